"""The serving processes' snapshot of the click-through model, refreshed from Redis.

Every ``ADMATCH_CTR_REFRESH_SECONDS`` a process reads the cells of the last
``ADMATCH_CTR_WINDOW_DAYS`` billing days (for each day, the campaigns in
``am:ctr:campaigns:<day>``, then each campaign's day hash, in pipelines of ``READ_CHUNK``),
fits :class:`matching.ctr.CtrModel` in a worker thread and swaps it in whole; the request path
only reads ``CtrStats.model`` (no Redis). Days before yesterday no longer change (a click counts
in its impression's day, and clicks come within the click window): they are read once and kept,
so a refresh reads today's and yesterday's hashes only. Until the first refresh, and whenever
Redis fails, the last model stays (at first :meth:`CtrModel.prior`: ranking by relevance).
"""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as aioredis

from matching.ctr import CellCounts, CellKey, CtrConfig, CtrModel
from service.billing.billing import Clock
from service.ctr import cells as ctr_cells
from service.store import keys

log = logging.getLogger(__name__)

READ_CHUNK = 32
DAY_S = 86400


class CtrStats:
    def __init__(self, r: aioredis.Redis, clock: Clock, *, config: CtrConfig | None = None,
                 window_days: int = 14) -> None:
        self._r = r
        self._clock = clock
        self.config = config or CtrConfig()
        self.window_days = window_days
        self.model = CtrModel.prior(self.config)
        self.refreshed_at: float | None = None
        self.refresh_seconds: float | None = None
        self._closed: dict[str, dict[CellKey, list[int]]] = {}  # day → its cells, for days before yesterday

    async def _read_day(self, day: str) -> dict[CellKey, list[int]]:
        campaigns = sorted(await self._r.smembers(keys.ctr_campaigns(day)))
        out: dict[CellKey, list[int]] = {}
        for start in range(0, len(campaigns), READ_CHUNK):
            chunk = [c.decode() if isinstance(c, bytes) else c for c in campaigns[start:start + READ_CHUNK]]
            async with self._r.pipeline(transaction=False) as p:
                for cid in chunk:
                    p.hgetall(keys.ctr_cells(cid, day))
                replies = await p.execute()
            for cid, fields in zip(chunk, replies, strict=True):
                if fields and isinstance(next(iter(fields)), bytes):
                    fields = {k.decode(): v.decode() for k, v in fields.items()}
                ctr_cells.parse(cid, fields, out)
            await asyncio.sleep(0)  # parsing is CPU work: let requests in between chunks
        return out

    async def cells(self, now: float) -> dict[CellKey, list[int]]:
        """Every cell of the window, summed over its days."""
        days = [self._clock.day(now - i * DAY_S) for i in range(self.window_days)]
        parts = []
        for i, day in enumerate(days):
            if i >= 2 and day in self._closed:
                parts.append(self._closed[day])
                continue
            got = await self._read_day(day)
            if i >= 2:
                self._closed[day] = got
            parts.append(got)
        for day in [d for d in self._closed if d not in days]:
            del self._closed[day]
        return ctr_cells.merge(parts)

    async def refresh(self, now: float | None = None) -> CtrModel:
        """Read the window's cells and fit a new model (in a thread); returns it."""
        t0 = time.perf_counter()
        raw = await self.cells(time.time() if now is None else now)
        counted = {k: CellCounts(n, e / ctr_cells.EXPOSURE_SCALE, c) for k, (n, e, c) in raw.items() if n > 0 or c > 0}
        self.model = await asyncio.to_thread(CtrModel.fit, counted, self.config)
        self.refreshed_at = time.time()
        self.refresh_seconds = time.perf_counter() - t0
        return self.model

    async def run(self, interval: float) -> None:
        """Refresh now and every ``interval`` seconds until cancelled; failures keep the last model."""
        failing = False
        while True:
            try:
                await self.refresh()
                if failing:
                    log.info("click-through model refreshed again")
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception:
                if not failing:  # logged once per outage
                    log.exception("click-through model refresh failed; keeping the last model")
                failing = True
            await asyncio.sleep(interval)
