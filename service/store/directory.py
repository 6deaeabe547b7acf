"""The admin's lists of tenants: every advertiser with its campaign count, every publisher with its
site count. Read-only: two round trips per list whatever its length (the ids, then the records and
counts in one pipeline); API keys are never read (only their hashes are stored, under other keys).
"""

from __future__ import annotations

from collections.abc import Callable
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


async def _records(r: aioredis.Redis, ids_key: str, record: Callable[[str], str],
                   counted: Callable[[str], str]) -> list[tuple[str, int]]:
    """Each id's stored record and the size of its counted set, in one pipeline; ids without a record dropped."""
    ids = sorted(text_set(await r.smembers(ids_key)))
    if not ids:
        return []
    async with r.pipeline(transaction=False) as p:
        for i in ids:
            p.get(record(i))
        for i in ids:
            p.scard(counted(i))
        raw = await p.execute()
    n = len(ids)
    return [(rec, int(count)) for rec, count in zip(raw[:n], raw[n:], strict=True) if rec is not None]


async def advertisers(r: aioredis.Redis) -> list[AdvertiserEntry]:
    """Every advertiser, by id, with its number of campaigns."""
    return [AdvertiserEntry(Advertiser.from_json(rec), count)
            for rec, count in await _records(r, keys.ADVERTISERS, keys.advertiser, keys.campaigns)]


async def publishers(r: aioredis.Redis) -> list[PublisherEntry]:
    """Every publisher, by id, with its number of sites."""
    return [PublisherEntry(Publisher.from_json(rec), count)
            for rec, count in await _records(r, keys.PUBLISHERS, keys.publisher, keys.publisher_sites)]
