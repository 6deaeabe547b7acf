"""The demo catalog and pages (JSON) and their loader."""
