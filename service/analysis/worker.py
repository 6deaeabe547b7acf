"""The analyzer worker (``admatch analyzer``): pages from the queue → encoder vectors → profiles.

Any number of workers on any number of machines share the stream through its consumer group.
A batch is read (``XREADGROUP``), encoded with one encoder call over every passage of its pages,
pooled per page (the same vector as :func:`matching.semantic.page_vector`), stored
(:class:`~service.analysis.profiles.ProfileStore`) and only then acknowledged and deleted.

Contract:
- No page is lost to a worker that dies: its entries stay pending, and a worker takes over
  entries pending longer than ``claim_idle_s`` (``XAUTOCLAIM``) before reading new ones. A page
  may therefore be analysed twice, never zero times.
- An entry that cannot be read as a page, or that a single-page encode rejects, is acknowledged,
  logged and counted at once; one delivered ``MAX_DELIVERIES`` times (it keeps killing workers) is
  given up the same way. No entry loops forever.
- :meth:`Analyzer.run` returns once ``stop`` is set, after finishing the batch in hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis.asyncio as aioredis
import redis.exceptions

from matching.encoder import SentenceEncoder
from matching.semantic import passages, pool
from matching.types import Page
from service import metrics
from service.analysis.entries import BadEntry, QueuedPage, decode
from service.analysis.outage import Outage
from service.analysis.profiles import ProfileStore
from service.analysis.queue import ensure_group
from service.store import keys

log = logging.getLogger(__name__)

MAX_DELIVERIES = 5
PRUNE_SECONDS = 600.0  # how often consumers long gone (no pending entries) are removed from the group
STREAM = keys.ANALYSIS_QUEUE.encode()


def encode_pages(pages: Sequence[Page], encoder: SentenceEncoder) -> np.ndarray:
    """Every page's vector (rows in ``pages`` order): all passages in one ``encode`` call, then
    pooled per page as :func:`matching.semantic.page_vector` pools them."""
    parts = [passages(p) for p in pages]
    vectors = encoder.encode([t for ts in parts for t in ts])
    out = np.zeros((len(pages), encoder.dim), dtype=np.float32)
    start = 0
    for i, ts in enumerate(parts):
        if ts:
            out[i] = pool(vectors[start:start + len(ts)])
        start += len(ts)
    return out


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    consumer: str
    batch: int = 16
    claim_idle_s: float = 60.0
    block_s: float = 1.0
    dedupe_s: float = 3600.0  # an analysed page is not queued again for this long


@dataclass(frozen=True, slots=True)
class Analysed:
    page_key: str
    delay_s: float  # enqueue time → profile stored


Entry = tuple[bytes, dict[bytes, bytes]]


class Analyzer:
    """One worker's loop over the shared queue (see the module contract). ``r`` must be created
    without response decoding: entries are decoded one by one, so one bad entry spoils no batch."""

    def __init__(self, r: aioredis.Redis, profiles: ProfileStore, encoder: SentenceEncoder,
                 options: WorkerOptions) -> None:
        self._r = r
        self._profiles = profiles
        self._encoder = encoder
        self.options = options
        self._own_pending = True  # first read what this consumer name held before a restart
        self._next_prune = 0.0
        self._outage = Outage(log, "analyzer (Redis)")

    async def step(self) -> list[Analysed] | None:
        """Analyse one batch; None when there was nothing to read within ``block_s``."""
        entries = await self._next()
        if not entries:
            return None
        return await self._analyse(entries)

    async def run(self, stop: asyncio.Event) -> None:
        """Analyse batches until ``stop`` is set (Redis errors: logged once, retried each second)."""
        await ensure_group(self._r)
        while not stop.is_set():
            try:
                await self.step()
                self._outage.ok()
            except redis.exceptions.ResponseError as e:
                if "NOGROUP" not in str(e):
                    raise
                await ensure_group(self._r)  # the stream was deleted (FLUSHDB): start it again
            except (redis.exceptions.RedisError, OSError) as e:
                self._outage.failed(e)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)

    async def _read(self, start: str, block_ms: int | None) -> list[Entry]:
        o = self.options
        got = await self._r.xreadgroup(keys.ANALYSIS_GROUP, o.consumer, {STREAM: start}, count=o.batch,
                                       block=block_ms)
        return list(got[0][1]) if got else []

    async def _next(self) -> list[Entry]:
        if self._own_pending:
            entries = await self._read("0", None)
            if entries:
                return entries
            self._own_pending = False
        claimed = await self._claim()
        if claimed:
            return claimed
        return await self._read(">", round(self.options.block_s * 1000))

    async def _claim(self) -> list[Entry]:
        """Entries other workers read more than ``claim_idle_s`` ago and did not finish."""
        o = self.options
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + PRUNE_SECONDS
            await self._prune()
        reply: Any = await self._r.xautoclaim(STREAM, keys.ANALYSIS_GROUP, o.consumer,
                                              round(o.claim_idle_s * 1000), start_id="0-0", count=o.batch)
        entries: list[Entry] = list(reply[1])
        if not entries:
            return []
        log.warning("took over %d pages another worker read %.0f s ago and did not finish",
                    len(entries), o.claim_idle_s)
        details = await self._r.xpending_range(STREAM, keys.ANALYSIS_GROUP, min=entries[0][0],
                                               max=entries[-1][0], count=len(entries), consumername=o.consumer)
        tries = {d["message_id"]: int(d["times_delivered"]) for d in details}
        spent = [eid for eid, _ in entries if tries.get(eid, 0) > MAX_DELIVERIES]
        if spent:
            log.error("gave up %d queue entries delivered over %d times (first %s)", len(spent), MAX_DELIVERIES,
                      spent[0].decode())
            metrics.ANALYSIS_REJECTED.labels("redelivered").inc(len(spent))
            await self._finish(spent, [])
        return [e for e in entries if e[0] not in spent]

    async def _prune(self) -> None:
        """Remove consumers with nothing pending that have not been seen for long (dead workers'
        names would otherwise pile up in the group, one per restart)."""
        gone_ms = max(3600.0, 10 * self.options.claim_idle_s) * 1000
        for c in await self._r.xinfo_consumers(STREAM, keys.ANALYSIS_GROUP):
            if int(c["pending"]) == 0 and int(c["idle"]) > gone_ms:
                await self._r.xgroup_delconsumer(STREAM, keys.ANALYSIS_GROUP, c["name"])

    async def _analyse(self, entries: list[Entry]) -> list[Analysed]:
        good: list[tuple[bytes, QueuedPage]] = []
        bad: list[bytes] = []
        for eid, fields in entries:
            if not fields:  # deleted after this consumer read it (analysed by another worker)
                bad.append(eid)
                continue
            try:
                good.append((eid, decode(fields)))
            except BadEntry as e:
                log.error("analysis queue entry %s is not a page (%s): acknowledged and dropped", eid.decode(), e)
                metrics.ANALYSIS_REJECTED.labels("undecodable").inc()
                bad.append(eid)
        started = time.perf_counter()
        vectors = await self._encode(good, bad)
        await self._profiles.put_many((q.page_key, v) for (_, q), v in zip(good, vectors, strict=True))
        now = time.time()
        await self._finish([eid for eid, _ in good] + bad, [q.page_key for _, q in good])
        metrics.ANALYSIS_BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.ANALYSED.inc(len(good))
        out = [Analysed(q.page_key, max(0.0, now - q.enqueued_at)) for _, q in good]
        for a in out:
            metrics.ANALYSIS_DELAY.observe(a.delay_s)
        return out

    async def _encode(self, good: list[tuple[bytes, QueuedPage]], bad: list[bytes]) -> np.ndarray:
        """The vectors of the ``good`` pages. When the batch fails they are encoded one by one, and a
        page that fails alone moves from ``good`` to ``bad``."""
        try:
            return await asyncio.to_thread(encode_pages, [q.page for _, q in good], self._encoder)
        except Exception:
            log.exception("encoding a batch of %d pages failed; encoding them one by one", len(good))
        rows = []
        for eid, q in list(good):
            try:
                rows.append((await asyncio.to_thread(encode_pages, [q.page], self._encoder))[0])
            except Exception:
                log.exception("page %s (entry %s) cannot be encoded: acknowledged and dropped", q.page_key,
                              eid.decode())
                metrics.ANALYSIS_REJECTED.labels("encode_failed").inc()
                good.remove((eid, q))
                bad.append(eid)
        return np.array(rows, dtype=np.float32).reshape(len(rows), self._encoder.dim)

    async def _finish(self, ids: list[bytes], analysed: list[str]) -> None:
        """Acknowledge and delete entries; analysed pages stay "seen" for the dedupe window."""
        if not ids:
            return
        async with self._r.pipeline(transaction=False) as p:
            p.xack(STREAM, keys.ANALYSIS_GROUP, *ids)
            p.xdel(STREAM, *ids)
            for k in analysed:
                p.set(keys.analysis_seen(k), b"1", ex=max(1, round(self.options.dedupe_s)))
            await p.execute()

