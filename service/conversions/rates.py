"""Predicted conversion rates of CPA campaigns' ads, for auction entry.

Each CPA campaign's counts (``am:{c:C}:cvr``: valid clicks and conversions by event, campaign and
ad) are read at most once per ``ttl_s`` per process, in one pipeline for the campaigns of a request;
the rate itself is :func:`matching.conversions.predicted_cvr`. They decide entry and price, never
what is charged. While Redis is unavailable a campaign's last counts read are used (none: the prior).
"""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis
from cachetools import LRUCache, TTLCache

from matching.conversions import CvrPrior, predicted_cvr
from service.resilience.redis_guard import STORE_DOWN
from service.store import keys

TTL_S = 10.0


class ConversionRates:
    def __init__(self, r: aioredis.Redis, prior: CvrPrior, *, ttl_s: float = TTL_S) -> None:
        self.r = r
        self.prior = prior
        self._counts: TTLCache[str, dict[str, str]] = TTLCache(maxsize=100_000, ttl=ttl_s)
        self._known: LRUCache[str, dict[str, str]] = LRUCache(maxsize=100_000)

    async def load(self, campaign_ids: Iterable[str]) -> None:
        """Read the counts of the campaigns not read within ``ttl_s`` (one round trip, or none)."""
        missing = sorted({c for c in campaign_ids if c not in self._counts})
        if not missing:
            return
        try:
            async with self.r.pipeline(transaction=False) as p:
                for cid in missing:
                    p.hgetall(keys.conversion_counts(cid))
                raw = await p.execute()
        except STORE_DOWN:
            return
        for cid, counts in zip(missing, raw, strict=True):
            self._counts[cid] = self._known[cid] = counts

    def predicted(self, campaign_id: str, ad_id: str, event: str) -> float:
        """The ad's predicted conversions of ``event`` per valid click (after :meth:`load`)."""
        c = self._counts.get(campaign_id) or self._known.get(campaign_id) or {}
        return predicted_cvr(
            ad_conversions=int(c.get(f"a:{ad_id}:conv:{event}", 0)), ad_clicks=int(c.get(f"a:{ad_id}:click", 0)),
            campaign_conversions=int(c.get(f"conv:{event}", 0)), campaign_clicks=int(c.get("click", 0)),
            prior=self.prior)

    def drop_cached(self) -> None:
        self._counts.clear()
        self._known.clear()
