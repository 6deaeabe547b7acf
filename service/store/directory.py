"""The admin's lists of tenants: every advertiser with its campaign count, every publisher with its
site count. Read-only: two round trips per list whatever its length (the ids, then the records and
counts in one pipeline); API keys are never read (only their hashes are stored, under other keys).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from service.store import keys
from service.store.records import Advertiser, Publisher
from service.store.replies import text_set


@dataclass(frozen=True, slots=True)
class AdvertiserEntry:
    advertiser: Advertiser
    campaigns: int


@dataclass(frozen=True, slots=True)
class PublisherEntry:
    publisher: Publisher
    sites: int


async def advertisers(r: aioredis.Redis) -> list[AdvertiserEntry]:
    """Every advertiser, by id."""
    ids = sorted(text_set(await r.smembers(keys.ADVERTISERS)))
    if not ids:
        return []
    async with r.pipeline(transaction=False) as p:
        for aid in ids:
            p.get(keys.advertiser(aid))
        for aid in ids:
            p.scard(keys.campaigns(aid))
        raw = await p.execute()
    n = len(ids)
    return [AdvertiserEntry(Advertiser.from_json(rec), int(count))
            for rec, count in zip(raw[:n], raw[n:], strict=True) if rec is not None]


async def publishers(r: aioredis.Redis) -> list[PublisherEntry]:
    """Every publisher, by id."""
    ids = sorted(text_set(await r.smembers(keys.PUBLISHERS)))
    if not ids:
        return []
    async with r.pipeline(transaction=False) as p:
        for pid in ids:
            p.get(keys.publisher(pid))
        for pid in ids:
            p.scard(keys.publisher_sites(pid))
        raw = await p.execute()
    n = len(ids)
    return [PublisherEntry(Publisher.from_json(rec), int(count))
            for rec, count in zip(raw[:n], raw[n:], strict=True) if rec is not None]
