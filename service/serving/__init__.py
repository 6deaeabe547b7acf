"""Serving a match: the loaded index and its live overlay, the page-ranking cache, placement
(ranking, budgets, auction, impressions) and building the index from the catalog."""
