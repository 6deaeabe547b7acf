"""The analysis queue: pages the request path offers, queued in a Redis stream for the workers.

The request path must never wait for it, so :meth:`AnalysisQueue.offer` only adds the page to a
bounded buffer in this process; :meth:`AnalysisQueue.run` (a task of the app's lifespan) sends the
buffer every ``FLUSH_SECONDS`` in one script call (``enqueue.lua``) that skips pages queued or
analysed within the dedupe window and stops adding at the queue's maximum length. Every
``admatch analyzer`` worker reads the stream through one consumer group (``am:{analysis}:pages``,
group ``analyzers``; key schema in :mod:`service.store.keys`).

Contract:
- ``offer`` is synchronous, constant-time and raises nothing for a page key and a ``Page``; a page
  it cannot keep (buffer full) is dropped and counted, never waited for.
- A page reaches the stream at most once per dedupe window, counted from when it was queued or
  last analysed. Pages dropped because the queue is full are not marked seen, so a later offer
  queues them once there is room.
- Redis errors during a flush drop that flush's pages (counted as ``redis_error``) and are logged
  once per change of state; nothing is raised to the request path or the flush loop.
- Counters and backlog gauges: :mod:`service.metrics` (``admatch_analysis_*``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from itertools import chain
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions

from matching.types import Page
from service import metrics
from service.analysis.entries import QueuedPage, cut_body
from service.analysis.outage import Outage
from service.store import keys

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.1
BACKLOG_SECONDS = 1.0  # how often the flush loop refreshes the backlog gauges
BUFFER_PAGES = 2048  # pages one process holds between flushes (20,000 offers a second at 0.1 s)
# A consumer counts as a live worker when it touched the group this recently (workers block on
# the stream 1 s at a time; a batch of long pages encodes in a few seconds).
LIVE_CONSUMER_SECONDS = 30.0

_SCRIPT = resources.files("service.analysis").joinpath("enqueue.lua").read_text("utf-8")
_DROPPED_BUFFER = metrics.ANALYSIS_DROPPED.labels("buffer")
_DROPPED_FULL = metrics.ANALYSIS_DROPPED.labels("queue_full")
_DROPPED_ERROR = metrics.ANALYSIS_DROPPED.labels("redis_error")


@dataclass(frozen=True, slots=True)
class Flushed:
    """What one flush did with the pages buffered since the previous one."""

    queued: int = 0
    deduplicated: int = 0
    dropped: int = 0  # queue full or Redis error


@dataclass(frozen=True, slots=True)
class Backlog:
    length: int  # entries in the stream: waiting, or read by a worker and not finished
    pending: int  # read by a worker and not finished (acknowledged entries are deleted)
    consumers: int  # workers that touched the group in the last LIVE_CONSUMER_SECONDS


async def ensure_group(r: aioredis.Redis) -> None:
    """Create the stream and its consumer group if missing (entries already there are read too)."""
    try:
        await r.xgroup_create(keys.ANALYSIS_QUEUE, keys.ANALYSIS_GROUP, id="0", mkstream=True)
    except redis.exceptions.ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise


def _name(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


async def read_backlog(r: aioredis.Redis) -> Backlog:
    """The queue's length, pending entries and live workers (zeros before anything was queued).
    Raises the client's errors."""
    async with r.pipeline(transaction=False) as p:
        p.xlen(keys.ANALYSIS_QUEUE)
        p.xinfo_groups(keys.ANALYSIS_QUEUE)
        p.xinfo_consumers(keys.ANALYSIS_QUEUE, keys.ANALYSIS_GROUP)
        length, groups, consumers = await p.execute(raise_on_error=False)
    if isinstance(length, Exception):
        raise length
    group = next((g for g in groups if _name(g["name"]) == keys.ANALYSIS_GROUP), None) \
        if not isinstance(groups, Exception) else None  # no stream or no group yet: nothing pending
    live = 0 if isinstance(consumers, Exception) else \
        sum(1 for c in consumers if int(c["idle"]) < LIVE_CONSUMER_SECONDS * 1000)
    return Backlog(int(length), int(group["pending"]) if group else 0, live)


class AnalysisQueue:
    """Pages offered by this process, flushed to the shared stream (see the module contract)."""

    def __init__(self, r: aioredis.Redis, *, max_length: int, dedupe_s: float,
                 buffer_pages: int = BUFFER_PAGES, clock: Callable[[], float] = time.time) -> None:
        self._r = r
        self._enqueue = r.register_script(_SCRIPT)
        self._max = max_length
        self._dedupe = max(1, round(dedupe_s))
        self._buffer_pages = buffer_pages
        self._clock = clock
        self._buf: dict[str, QueuedPage] = {}
        self._outage = Outage(log, "analysis queue (Redis)")

    def offer(self, page_key: str, page: Page) -> None:
        """Queue ``page`` for analysis soon, unless queued recently (see the module contract)."""
        metrics.ANALYSIS_OFFERED.inc()
        if page_key in self._buf:
            metrics.ANALYSIS_DEDUPLICATED.inc()
        elif len(self._buf) >= self._buffer_pages:
            _DROPPED_BUFFER.inc()
        else:
            self._buf[page_key] = QueuedPage(page_key, page.title, cut_body(page), self._clock())

    @property
    def buffered(self) -> int:
        return len(self._buf)

    async def flush(self) -> Flushed:
        """Send the buffered pages to the stream in one call; never raises a Redis error."""
        if not self._buf:
            return Flushed()
        batch, self._buf = list(self._buf.values()), {}
        stream_keys = [keys.ANALYSIS_QUEUE, *(keys.analysis_seen(q.page_key) for q in batch)]
        args = [self._max, self._dedupe, *chain.from_iterable(q.args() for q in batch)]
        try:
            queued, dup, full, length = await self._enqueue(keys=stream_keys, args=args)
        except (redis.exceptions.RedisError, OSError) as e:
            self._outage.failed(e)
            _DROPPED_ERROR.inc(len(batch))
            return Flushed(dropped=len(batch))
        self._outage.ok()
        metrics.ANALYSIS_QUEUED.inc(queued)
        metrics.ANALYSIS_DEDUPLICATED.inc(dup)
        _DROPPED_FULL.inc(full)
        metrics.ANALYSIS_BACKLOG.set(length)
        return Flushed(int(queued), int(dup), int(full))

    async def backlog(self) -> Backlog | None:
        """The backlog now (also set as the backlog gauges), or None when Redis does not answer."""
        try:
            b = await read_backlog(self._r)
        except (redis.exceptions.RedisError, OSError) as e:
            self._outage.failed(e)
            return None
        metrics.ANALYSIS_BACKLOG.set(b.length)
        metrics.ANALYSIS_PENDING.set(b.pending)
        return b

    async def run(self, interval: float = FLUSH_SECONDS) -> None:
        """Flush every ``interval`` seconds and refresh the backlog gauges every BACKLOG_SECONDS,
        until cancelled (then call :meth:`flush` once more for the last pages)."""
        next_backlog = 0.0
        while True:
            await asyncio.sleep(interval)
            try:
                await self.flush()
                if time.monotonic() >= next_backlog:
                    next_backlog = time.monotonic() + BACKLOG_SECONDS
                    await self.backlog()
            except Exception:  # a bug here must not end the loop: the next round tries again
                log.exception("analysis queue flush failed")
