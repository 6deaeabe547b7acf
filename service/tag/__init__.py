"""The JavaScript ad tag: its script, site tokens (public, per origin), the tag's match and
viewable-impression endpoints' logic. Routes: service/api/routes/tag.py and sites.py."""
