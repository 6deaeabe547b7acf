"""What a serving process holds of page analysis: the queue it offers pages to, the profile
store it reads, the flush task; opened and closed by the app's lifespan (:mod:`service.app`)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import redis.asyncio as aioredis

from matching.encoder import default_encoder
from service.analysis.profiles import ProfileStore
from service.analysis.queue import AnalysisQueue, ensure_group
from service.resilience.breaker import CircuitBreaker
from service.resilience.redis_guard import Timeouts, open_client
from service.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class ServingAnalysis:
    queue: AnalysisQueue
    profiles: ProfileStore
    task: asyncio.Task[None]  # the flush loop: cancel it (with the app's tasks) before close()
    _bytes_client: aioredis.Redis

    async def close(self) -> None:
        """Send the pages offered since the last flush, then close the profile store's client."""
        try:
            await self.queue.flush()
        finally:
            await self._bytes_client.aclose()


async def start_analysis(settings: Settings, url: str, r: aioredis.Redis,
                         breaker: CircuitBreaker | None = None) -> ServingAnalysis:
    """The queue on the app's client ``r``, the profile store on a client of its own (profiles
    are bytes; ``r`` decodes replies) and the flush task. The encoder is named, never loaded."""
    await ensure_group(r)
    queue = AnalysisQueue(r, max_length=settings.analysis_queue_max, dedupe_s=settings.analysis_dedupe_seconds)
    encoder = default_encoder()
    raw = open_client(url, cluster=settings.redis_cluster, timeouts=Timeouts.serving(settings), breaker=breaker,
                      decode=False)
    profiles = ProfileStore(raw, encoder.name, dim=encoder.dim, ttl_s=settings.profile_ttl,
                            local_size=settings.page_cache_size)
    task = asyncio.create_task(queue.run(), name="analysis-flush")
    return ServingAnalysis(queue, profiles, task, raw)
