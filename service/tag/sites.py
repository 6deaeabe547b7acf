"""Site tokens in Redis: a publisher's public token for the ad tag and the origins it may serve.

Contract: a token only asks for matches for its publisher, from pages on its ``origins``. Lookups
on the tag's path are cached for ``lookup_ttl_s`` (1 s: an origin added or removed applies within
a second on every process, as publisher settings do) and answered from the last value read while
Redis is unavailable. Keys: :mod:`service.store.keys` (``site``, ``publisher_sites``).
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Sequence

import redis.asyncio as aioredis
from cachetools import LRUCache, TTLCache

from service.errors import NotFound
from service.resilience.redis_guard import STORE_DOWN
from service.store import keys
from service.store.catalog import LOOKUP_TTL_S, now_iso
from service.store.records import Site
from service.store.replies import text_set

MAX_SITES = 100  # per publisher


def new_site_token() -> str:
    return f"st_{secrets.token_urlsafe(18)}"


class SiteStore:
    def __init__(self, r: aioredis.Redis, *, lookup_ttl_s: float = LOOKUP_TTL_S) -> None:
        self.r = r
        self._cached: TTLCache[str, Site | None] = TTLCache(maxsize=100_000, ttl=lookup_ttl_s)
        self._known: LRUCache[str, Site] = LRUCache(maxsize=100_000)

    async def create(self, publisher_id: str, name: str, origins: Sequence[str], token: str | None = None) -> Site:
        site = Site(token=token or new_site_token(), publisher_id=publisher_id, name=name,
                    origins=tuple(dict.fromkeys(origins)), created_at=now_iso())
        await self.r.set(keys.site(site.token), site.to_json())
        await self.r.sadd(keys.publisher_sites(publisher_id), site.token)
        self._cached.pop(site.token, None)
        return site

    async def count(self, publisher_id: str) -> int:
        return int(await self.r.scard(keys.publisher_sites(publisher_id)))

    async def get(self, publisher_id: str, token: str) -> Site:
        """The publisher's own site; NotFound for another publisher's or an unknown token."""
        raw = await self.r.get(keys.site(token))
        site = Site.from_json(raw) if raw is not None else None
        if site is None or site.publisher_id != publisher_id:
            raise NotFound(f"site {token!r} does not exist (or belongs to another publisher)")
        return site

    async def list(self, publisher_id: str) -> list[Site]:
        tokens = sorted(text_set(await self.r.smembers(keys.publisher_sites(publisher_id))))
        if not tokens:
            return []
        raws = await self.r.mget([keys.site(t) for t in tokens])
        return [Site.from_json(x) for x in raws if x is not None]

    async def update(self, publisher_id: str, token: str, *, name: str | None = None,
                     origins: Sequence[str] | None = None) -> Site:
        site = await self.get(publisher_id, token)
        site = dataclasses.replace(site, name=name if name is not None else site.name,
                                   origins=tuple(dict.fromkeys(origins)) if origins is not None else site.origins)
        await self.r.set(keys.site(token), site.to_json(), xx=True)
        self._cached.pop(token, None)  # this process at once; others within lookup_ttl_s
        return site

    async def delete(self, publisher_id: str, token: str) -> None:
        await self.get(publisher_id, token)
        await self.r.delete(keys.site(token))
        await self.r.srem(keys.publisher_sites(publisher_id), token)
        self._cached.pop(token, None)
        self._known.pop(token, None)

    async def serving(self, token: str) -> Site | None:
        """The site of ``token`` as the tag's path needs it: at most ``lookup_ttl_s`` old (unknown
        tokens too, so a flood of made-up tokens costs one read per token per second)."""
        if token in self._cached:
            return self._cached[token]
        try:
            raw = await self.r.get(keys.site(token))
        except STORE_DOWN:
            if (known := self._known.get(token)) is None:
                raise
            return known
        site = Site.from_json(raw) if raw is not None else None
        self._cached[token] = site
        if site is not None:
            self._known[token] = site
        return site
