"""Prometheus metrics (per process; scrape each worker, or run one worker per container)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MATCH_SECONDS = Histogram("admatch_match_seconds", "time to answer /v1/match",
                          buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0))
MATCH_ADS = Counter("admatch_match_ads_total", "ads returned by /v1/match")
MATCH_EMPTY = Counter("admatch_match_empty_total", "match requests that returned no paid ad")
CLICKS = Counter("admatch_clicks_total", "click decisions", ["reason"])
CHARGED_FEN = Counter("admatch_charged_fen_total", "fen charged for valid clicks")
ERRORS = Counter("admatch_http_errors_total", "error responses, by HTTP status and error code", ["status", "error"])

# Page analysis (service/analysis/). Serving processes: what was offered and what became of it,
# and the backlog as last seen by the flush task.
ANALYSIS_OFFERED = Counter("admatch_analysis_offered_total", "pages offered for background analysis")
ANALYSIS_QUEUED = Counter("admatch_analysis_queued_total", "pages added to the analysis queue")
ANALYSIS_DEDUPLICATED = Counter("admatch_analysis_deduplicated_total",
                                "pages offered again while queued or recently analysed (not queued)")
ANALYSIS_DROPPED = Counter("admatch_analysis_dropped_total",
                           "pages not queued: buffer (this process's buffer full), queue_full, redis_error",
                           ["reason"])
ANALYSIS_BACKLOG = Gauge("admatch_analysis_backlog_pages",
                         "analysis queue length (waiting or being analysed), as last read")
ANALYSIS_PENDING = Gauge("admatch_analysis_pending_pages",
                         "analysis queue entries read by a worker and not yet finished, as last read")
# Analyzer workers (`admatch analyzer --metrics-port`).
ANALYSED = Counter("admatch_analyzer_pages_total", "pages analysed and their profiles stored")
ANALYSIS_REJECTED = Counter("admatch_analyzer_rejected_total",
                            "queue entries acknowledged without analysis: undecodable, or delivered too often",
                            ["reason"])
ANALYSIS_DELAY = Histogram("admatch_analyzer_queue_delay_seconds", "enqueue time to profile stored",
                           buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800))
ANALYSIS_BATCH_SECONDS = Histogram("admatch_analyzer_batch_seconds", "time to encode and store one batch",
                                   buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30))
REDIS_CIRCUIT_OPENED = Counter("admatch_redis_circuit_opened_total",
                               "times Redis stopped answering and the circuit breaker opened")
CLICKS_SPOOLED = Counter("admatch_clicks_spooled_total",
                         "clicks redirected while Redis was unavailable, kept on disk to be decided later")
