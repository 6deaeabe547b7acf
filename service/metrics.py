"""Prometheus metrics (per process; scrape each worker, or run one worker per container)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

MATCH_SECONDS = Histogram("admatch_match_seconds", "time to answer /v1/match",
                          buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0))
MATCH_ADS = Counter("admatch_match_ads_total", "ads returned by /v1/match")
MATCH_EMPTY = Counter("admatch_match_empty_total", "match requests that returned no paid ad")
CLICKS = Counter("admatch_clicks_total", "click decisions", ["reason"])
CHARGED_FEN = Counter("admatch_charged_fen_total", "fen charged for valid clicks")
ERRORS = Counter("admatch_http_errors_total", "error responses, by HTTP status and error code", ["status", "error"])
REDIS_CIRCUIT_OPENED = Counter("admatch_redis_circuit_opened_total",
                               "times Redis stopped answering and the circuit breaker opened")
CLICKS_SPOOLED = Counter("admatch_clicks_spooled_total",
                         "clicks redirected while Redis was unavailable, kept on disk to be decided later")
