"""Exchanges: the OpenRTB clients, their terms, and their bid / win counters in Redis.

Keys (listed here as they belong to this capability; prefixes as in :mod:`service.store.keys`)::

    am:exchanges                    SET     exchange ids
    am:exchange:<X>                 STRING  exchange JSON (terms below)
    am:apikey:<sha256 of key>       STRING  "exchange:<X>" (shared with the other roles)
    am:{x:X}:stats:<day>            HASH    requests, bids, nobids, wins, billed (YYYYMMDD, billing tz)
    am:{x:X}:notice:<imp>           STRING  "1" once the win (nurl) or billing (burl) notice of an
                                            impression was counted; "w:" / "b:" prefixed, TTL 2 days

Counters gather in the process (:meth:`ExchangeStats.count`, no Redis call on the bid path) and
are written every second by :meth:`ExchangeStats.run`; notices are counted at once, each once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

import redis.asyncio as aioredis
from cachetools import TTLCache

from service.errors import Conflict, NotFound
from service.resilience.redis_guard import STORE_DOWN
from service.store import keys
from service.store.catalog import key_digest, new_api_key, new_id, now_iso
from service.store.records import Record, Role

log = logging.getLogger(__name__)

EXCHANGES = keys.PREFIX + "exchanges"
STATS_TTL_S = 400 * 86400
NOTICE_TTL_S = 2 * 86400
FIELDS = ("requests", "bids", "nobids", "wins", "billed")


def exchange_key(xid: str) -> str:
    return f"{keys.PREFIX}exchange:{xid}"


def stats_key(xid: str, day: str) -> str:
    return f"{keys.PREFIX}{{x:{xid}}}:stats:{day}"


def notice_key(xid: str, kind: str, imp: str) -> str:
    return f"{keys.PREFIX}{{x:{xid}}}:notice:{kind}:{imp}"


@dataclass(frozen=True, slots=True)
class Exchange(Record):
    """An exchange's terms: the currency it prefers, its share of our expected revenue (what we
    bid), the shading of first-price bids, the least click price, and whether a no-bid is a 204
    or a 200 with ``nbr``."""

    id: str
    name: str
    currency: str
    revenue_share: float
    created_at: str
    shading: float = 0.8
    min_cpc_fen: int = 1
    nbr_body: bool = False


class ExchangeStore:
    def __init__(self, r: aioredis.Redis, *, lookup_ttl_s: float = 1.0) -> None:
        self.r = r
        self._cache: TTLCache[str, Exchange] = TTLCache(maxsize=10_000, ttl=lookup_ttl_s)
        self._known: dict[str, Exchange] = {}

    async def create(self, name: str, currency: str, revenue_share: float, *, shading: float = 0.8,
                     min_cpc_fen: int = 1, nbr_body: bool = False, id: str | None = None,
                     api_key: str | None = None) -> tuple[Exchange, str]:
        xid = id or new_id("exc")
        api_key = api_key or new_api_key(Role.EXCHANGE)
        x = Exchange(id=xid, name=name, currency=currency.upper(), revenue_share=revenue_share,
                     created_at=now_iso(), shading=shading, min_cpc_fen=min_cpc_fen, nbr_body=nbr_body)
        if not await self.r.set(exchange_key(xid), x.to_json(), nx=True):
            raise Conflict(f"exchange id {xid!r} exists already; choose another id or omit it")
        await self.r.set(keys.api_key(key_digest(api_key)), f"{Role.EXCHANGE.value}:{xid}")
        await self.r.sadd(EXCHANGES, xid)
        return x, api_key

    async def get(self, xid: str) -> Exchange:
        """The exchange (cached a second; its last known terms while Redis is unavailable)."""
        hit = self._cache.get(xid)
        if hit is not None:
            return hit
        try:
            raw = await self.r.get(exchange_key(xid))
        except STORE_DOWN:
            if xid in self._known:
                return self._known[xid]
            raise
        if raw is None:
            raise NotFound(f"no exchange {xid!r}; create it with POST /v1/exchanges")
        x = self._cache[xid] = self._known[xid] = Exchange.from_json(raw)
        return x


class ExchangeStats:
    """Per-exchange daily counters (see the module docstring)."""

    def __init__(self, r: aioredis.Redis) -> None:
        self.r = r
        self._pending: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def count(self, xid: str, day: str, **amounts: int) -> None:
        c = self._pending[stats_key(xid, day)]
        for name, n in amounts.items():
            if n:
                c[name] += n

    async def notice_once(self, xid: str, kind: str, imp: str, day: str, field: str) -> bool:
        """Count one ``field`` for impression ``imp`` unless its ``kind`` notice was counted before."""
        if not await self.r.set(notice_key(xid, kind, imp), "1", nx=True, ex=NOTICE_TTL_S):
            return False
        async with self.r.pipeline(transaction=False) as p:
            p.hincrby(stats_key(xid, day), field, 1)
            p.expire(stats_key(xid, day), STATS_TTL_S)
            await p.execute()
        return True

    async def flush(self) -> None:
        pending, self._pending = self._pending, defaultdict(Counter)
        if not pending:
            return
        try:
            async with self.r.pipeline(transaction=False) as p:
                for k, counts in pending.items():
                    for name, n in counts.items():
                        p.hincrby(k, name, n)
                    p.expire(k, STATS_TTL_S)
                await p.execute()
        except BaseException:
            for k, counts in pending.items():  # kept for the next round
                self._pending[k].update(counts)
            raise

    async def run(self, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.flush()
            except STORE_DOWN:  # kept; the breaker has logged the outage
                pass
            except Exception:
                log.exception("exchange counters flush failed")

    async def report(self, xid: str, start: date, end: date) -> list[dict[str, int | str | float]]:
        """One row per day from ``start`` to ``end`` (inclusive) with the counters and the win rate."""
        await self.flush()
        days = [(start + timedelta(days=i)).strftime("%Y%m%d") for i in range((end - start).days + 1)]
        async with self.r.pipeline(transaction=False) as p:
            for d in days:
                p.hgetall(stats_key(xid, d))
            raw = await p.execute()
        rows: list[dict[str, int | str | float]] = []
        for d, h in zip(days, raw, strict=True):
            row: dict[str, int | str | float] = {"day": d, **{f: int(h.get(f, 0)) for f in FIELDS}}
            bids = int(row["bids"])
            row["win_rate"] = round(int(row["wins"]) / bids, 4) if bids else 0.0
            rows.append(row)
        return rows
