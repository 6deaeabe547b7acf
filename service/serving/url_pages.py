"""Pages known by URL: what the service read of a page, for requests that carry only its URL.

An OpenRTB request names ``site.page`` but carries no article. :class:`UrlPages` (an in-process
TTL LRU over Redis ``am:url:<hash of URL>`` → the page's title and text, JSON, kept for the profile
TTL) answers such requests with the text the service saw: a page ranked through ``/v1/match`` or
the ad tag with its URL (:meth:`UrlPages.remember`, once per process and content), or fetched in
the background by :mod:`service.openrtb.fetcher`.

Known gap: a publisher's request may name any URL, so a publisher could attach its own text to a
URL of another site; the stored text is what the last request for that URL sent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from cachetools import LRUCache, TTLCache

from matching.analyze import make_page
from matching.types import Page
from service.resilience.redis_guard import STORE_DOWN
from service.serving.page_cache import page_key
from service.store import keys

MAX_TEXT_CHARS = 20_000
MAX_TITLE_CHARS = 500


def url_hash(url: str) -> str:
    return hashlib.blake2b(url.encode("utf-8"), digest_size=16).hexdigest()


def url_page_key(url: str) -> str:
    return f"{keys.PREFIX}url:{url_hash(url)}"


@dataclass(frozen=True, slots=True)
class KnownPage:
    url: str
    title: str
    text: str

    @property
    def key(self) -> str:
        """The page key of the page cache and the analysis queue."""
        return page_key(url=self.url, title=self.title, text=self.text, html=None)

    def page(self) -> Page:
        return make_page(title=self.title, text=self.text)


class UrlPages:
    """Pages by URL (see the module docstring); unknown URLs are remembered as such a short while."""

    def __init__(self, r: aioredis.Redis, *, ttl_s: float, local_size: int = 10_000,
                 miss_ttl_s: float = 1.0) -> None:
        self.r = r
        self._ttl = int(ttl_s)
        self._hits: TTLCache[str, KnownPage] = TTLCache(maxsize=local_size, ttl=min(ttl_s, 3600))
        self._misses: TTLCache[str, bool] = TTLCache(maxsize=local_size, ttl=miss_ttl_s)
        # URL → the request page key last stored from this process, so a page requested again
        # with the same content costs no write
        self._stored: LRUCache[str, str] = LRUCache(maxsize=local_size)

    async def get(self, url: str) -> KnownPage | None:
        hit = self._hits.get(url)
        if hit is not None or url in self._misses:
            return hit
        try:
            raw = await self.r.get(url_page_key(url))
        except STORE_DOWN:
            return None
        if raw is None:
            self._misses[url] = True
            return None
        try:
            d = json.loads(raw)
            page = KnownPage(url=url, title=str(d["title"]), text=str(d["text"]))
        except (ValueError, KeyError, TypeError):
            return None
        self._hits[url] = page
        return page

    async def put(self, page: KnownPage) -> None:
        await self.r.set(url_page_key(page.url), json.dumps({"title": page.title, "text": page.text},
                                                            ensure_ascii=False), ex=self._ttl)
        self._hits[page.url] = page
        self._misses.pop(page.url, None)

    async def remember(self, url: str, content_key: str, build: Callable[[], KnownPage | None]) -> None:
        """Store the page a request showed for ``url`` unless this process stored the same content
        (``content_key``) already; ``build`` runs only when it stores. Never raises for Redis: a
        page not remembered is fetched or ranked on the request's own signals later."""
        if self._stored.get(url) == content_key:
            return
        page = build()
        if page is None or not page.text.strip():
            return
        try:
            await self.put(page)
        except STORE_DOWN:
            return
        self._stored[url] = content_key
