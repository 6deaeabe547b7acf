"""The impression log: every impression shown and every genuine click, for offline training.

Entries go to the Redis stream :data:`service.store.keys.IMPRESSION_LOG` as one JSON object each
(field ``j``), trimmed to about ``maxlen`` entries (``XADD MAXLEN ~``: Redis trims whole
macro-nodes, so the stream may hold slightly more). An impression entry::

    {"ev": "imp", "t": unix s, "imp": id, "pub", "cmp", "ad", "pos": 0-based slot,
     "cats": [[IAB id, score], …], "kw": [matched keywords], "sig": {signal: score}, "s": relevance,
     "band", "bid": fen, "price": fen, "q": quality the auction ranked by, "pctr": predicted CTR at
     the slot (posterior mean), "x": 1 if the auction explored}

and a click entry ``{"ev": "click", "t", "imp", "cmp", "ad", "reason"}`` (a genuine click: charged,
or refused for budget). No user key, pseudonym, IP or user agent is written.

The request path only appends to an in-process buffer (bounded: beyond ``BUFFER_MAX`` entries
between flushes the oldest are dropped and counted); :meth:`ImpressionLog.flush` writes the buffer
with one script call (one round trip) per ``CHUNK`` entries, on the impression-flush timer. A flush that fails drops
its entries (logged): the log is for training, never for money.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

import orjson
import redis.asyncio as aioredis

from service.store import keys

log = logging.getLogger(__name__)

BUFFER_MAX = 100_000
CHUNK = 64


class ImpressionLog:
    def __init__(self, r: aioredis.Redis, maxlen: int, *, buffered: bool = True) -> None:
        """``maxlen`` 0: nothing is logged."""
        self._r = r
        self.maxlen = maxlen
        self.buffered = buffered
        self._buffer: deque[bytes] = deque(maxlen=BUFFER_MAX)
        self._script = resources.files("service.ctr").joinpath("implog.lua").read_text("utf-8")
        self.dropped = 0
        self.written = 0

    @property
    def enabled(self) -> bool:
        return self.maxlen > 0

    def append(self, entry: dict[str, Any]) -> None:
        """Buffer one entry (never blocks, never fails a request)."""
        if not self.enabled:
            return
        if len(self._buffer) == BUFFER_MAX:
            self.dropped += 1
        self._buffer.append(orjson.dumps(entry))

    async def flush(self) -> int:
        """Write the buffered entries; returns how many were written."""
        if not self._buffer:
            return 0
        entries = list(self._buffer)
        self._buffer.clear()
        written = 0
        try:
            # one script call per round trip: a flush of a busy second holds thousands of entries,
            # and packing them in one pipeline held the event loop (and the requests behind it)
            for start in range(0, len(entries), CHUNK):
                written += int(await self._r.eval(self._script, 1, keys.IMPRESSION_LOG, self.maxlen,
                                                  *entries[start:start + CHUNK]))
        except Exception:
            self.dropped += len(entries) - written
            log.warning("impression log: %d entries dropped", len(entries) - written, exc_info=True)
        self.written += written
        return written

    async def after_append(self) -> None:
        """Write at once when not buffered (tests, scripts)."""
        if not self.buffered:
            await self.flush()


async def read(r: aioredis.Redis, *, start: str = "-", batch: int = 1000) -> AsyncIterator[dict[str, Any]]:
    """Every entry from ``start`` (a stream id, inclusive) on, oldest first, each with its stream
    ``id``; entries that are not JSON objects are skipped."""
    cursor = start
    exclusive = False
    while True:
        lo = f"({cursor}" if exclusive else cursor
        rows = await r.xrange(keys.IMPRESSION_LOG, min=lo, max="+", count=batch)
        if not rows:
            return
        for entry_id, fields in rows:
            eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            raw = fields.get("j") if isinstance(fields, dict) else None
            if raw is None:
                raw = fields.get(b"j") if isinstance(fields, dict) else None
            try:
                doc = json.loads(raw) if raw is not None else None
            except ValueError:
                doc = None
            if isinstance(doc, dict):
                yield {"id": eid, **doc}
        cursor, exclusive = (rows[-1][0].decode() if isinstance(rows[-1][0], bytes) else rows[-1][0]), True
        if len(rows) < batch:
            return
