"""The console's pages, one module per kind of user (auth, advertiser, reports, publisher, admin)."""
