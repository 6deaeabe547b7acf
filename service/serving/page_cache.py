"""Page-analysis cache: a page seen before (same URL, same content) skips normalisation,
segmentation, vectorisation and scoring.

Two levels: an in-process LRU with TTL (cachetools) and a Redis cache shared by every worker and
replica (``am:pc:<index version>:<page hash>``, with a TTL). What is cached is the relevance
ranking of the page against one index version and its categories, before per-request filters (paused ads, budgets,
pacing, auction), so a cached page still gets fresh billing decisions. Keys include the index
version, so a new index never serves a stale ranking.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import redis.asyncio as aioredis
from cachetools import TTLCache

from matching.categories import Category, load_taxonomy
from matching.types import Ad, Candidate, Signals
from service.resilience.redis_guard import STORE_DOWN

log = logging.getLogger(__name__)
# The entry format is part of the key, so a rolling upgrade never reads another format's entries.
FORMAT = 4
PREFIX = f"am:pc{FORMAT}:"


def page_key(*, url: str | None, title: str | None, text: str | None, html: str | None) -> str:
    h = hashlib.blake2b(digest_size=16)
    for part in (url or "", title or "", text or "", html or ""):
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class PageResult:
    """A page's relevance ranking against one index version, and its categories; ``analysed``
    when it was ranked with the page's sentence-encoder vector (else it is the first view)."""

    candidates: list[Candidate]
    categories: list[tuple[Category, float]]
    analysed: bool = False


def _encode(res: PageResult) -> str:
    return json.dumps({
        "c": [[c.ad.id, c.score, dataclasses.asdict(c.signals), list(c.matched_keywords), list(c.match_types)]
              for c in res.candidates],
        "k": [[cat.id, score] for cat, score in res.categories], "a": res.analysed}, ensure_ascii=False)


def _decode(raw: str | bytes, ads: Mapping[str, Ad]) -> PageResult | None:
    data = json.loads(raw)
    out = []
    for ad_id, score, signals, matched, types in data["c"]:
        ad = ads.get(ad_id)
        if ad is None:
            return None  # written against another catalog: recompute
        out.append(Candidate(ad=ad, score=score, signals=Signals(**signals), matched_keywords=tuple(matched),
                             match_types=tuple(types)))
    taxonomy = load_taxonomy()
    return PageResult(out, [(taxonomy[cid], score) for cid, score in data["k"]], bool(data["a"]))


class PageCache:
    def __init__(self, r: aioredis.Redis | None, *, local_size: int, ttl_s: float) -> None:
        self._r = r
        self._local: TTLCache[tuple[str, str], PageResult] = TTLCache(maxsize=local_size, ttl=ttl_s)
        self._ttl = int(ttl_s)

    async def get(self, version: str, key: str, ads: Mapping[str, Ad]) -> PageResult | None:
        hit = self._local.get((version, key))
        if hit is not None or self._r is None:
            return hit
        try:
            raw = await self._r.get(f"{PREFIX}{version}:{key}")
        except STORE_DOWN:  # Redis away: the breaker has said so once
            return None
        except Exception:  # the cache is an optimisation: never fail a match because of it
            log.warning("page cache read failed", exc_info=True)
            return None
        if raw is None:
            return None
        try:
            res = _decode(raw, ads)
        except (ValueError, KeyError, TypeError):  # undecodable: a miss, recomputed and overwritten
            log.warning("page cache entry %s undecodable", key, exc_info=True)
            return None
        if res is not None:
            self._local[(version, key)] = res
        return res

    async def put(self, version: str, key: str, res: PageResult) -> None:
        self._local[(version, key)] = res
        if self._r is None:
            return
        try:
            await self._r.set(f"{PREFIX}{version}:{key}", _encode(res), ex=self._ttl)
        except STORE_DOWN:
            pass
        except Exception:
            log.warning("page cache write failed", exc_info=True)
