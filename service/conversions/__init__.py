"""Conversions: the pixel and postback (routes in service.api.routes.conversions), attribution to a
click and the CPA charge in one Lua script, and the conversion rates CPA bids enter auctions with."""
