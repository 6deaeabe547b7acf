"""The ``admatch analyzer`` process: its Redis client, encoder, signal handling and metrics.

Run any number of them, on any machines that reach the same Redis (``ADMATCH_REDIS_URL``; on
one machine without it, the embedded server ``admatch serve`` uses). SIGTERM or SIGINT stops a
worker after the batch in hand; a worker killed outright leaves its pages to the others.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket

from prometheus_client import start_http_server

from matching.encoder import UniversalSentenceEncoder, default_encoder
from service.analysis.profiles import ProfileStore
from service.analysis.worker import Analyzer, WorkerOptions
from service.resilience.redis_guard import Timeouts, open_client
from service.settings import Settings

log = logging.getLogger(__name__)


def default_consumer() -> str:
    """A worker's name in the consumer group: unique per process, readable in XINFO."""
    return f"{socket.gethostname()}-{os.getpid()}"


async def run_analyzer(settings: Settings, url: str, options: WorkerOptions, *, threads: int = 1,
                       metrics_port: int | None = None, metrics_host: str = "127.0.0.1") -> None:
    """Analyse pages from the queue at ``url`` until SIGTERM or SIGINT."""
    encoder = default_encoder() if threads == 1 else UniversalSentenceEncoder(threads=threads)
    r = open_client(url, cluster=settings.redis_cluster, timeouts=Timeouts.batch(), decode=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await r.ping()
        if metrics_port is not None:
            start_http_server(metrics_port, addr=metrics_host)
        await asyncio.to_thread(encoder.encode, ["预热"])  # loaded before any page is taken
        profiles = ProfileStore(r, encoder.name, dim=encoder.dim, ttl_s=settings.profile_ttl)
        log.info("analyzer %s ready (%s, batch %d, takes over pages pending %.0f s)", options.consumer,
                 encoder.name, options.batch, options.claim_idle_s)
        await Analyzer(r, profiles, encoder, options).run(stop)
        log.info("analyzer %s stopped", options.consumer)
    finally:
        await r.aclose()
