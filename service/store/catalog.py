"""The catalog in Redis: advertisers, publishers, API keys, campaigns and ads.

Contract: every write that touches several keys of one advertiser is a single MULTI/EXEC
transaction on that advertiser's hash slot, so it is all or nothing; the global ``blocked`` set
and ``catalog:version`` counter are derived and written right after. Reads of another
advertiser's campaign or ad find nothing (:class:`NotFound`), which is how tenants are isolated.
Keys are listed in :mod:`service.store.keys`. An ad serves when :attr:`AdRecord.serves` (active,
and not held back by creative review: service.review.creative_review) and its campaign is active.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from cachetools import LRUCache, TTLCache
from redis.exceptions import WatchError

from service.errors import Conflict, NotFound
from service.resilience.redis_guard import STORE_DOWN
from service.store import keys
from service.store.records import (
    AdRecord,
    Advertiser,
    Campaign,
    Pacing,
    Publisher,
    ReviewStatus,
    Role,
    Status,
)
from service.store.replies import stream_entries, text, text_set


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    id: str


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


def key_digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def new_api_key(role: Role) -> str:
    return f"am_{role.value[:3]}_{secrets.token_urlsafe(24)}"


LOOKUP_TTL_S = 1.0
_WRITE_ATTEMPTS = 20  # optimistic retries of one ad update; conflicts are rare (an admin deciding its review)


class CatalogStore:
    """Async access to the catalog; ``r`` decodes responses to str."""

    def __init__(self, r: aioredis.Redis, *, lookup_ttl_s: float = LOOKUP_TTL_S) -> None:
        self.r = r
        # Hot-path lookups (the API key and publisher of every match request) are kept this long
        # in the process; a changed floor or fallback ad applies within lookup_ttl_s everywhere.
        self._principals: TTLCache[str, Principal] = TTLCache(maxsize=100_000, ttl=lookup_ttl_s)
        self._publishers: TTLCache[str, Publisher] = TTLCache(maxsize=100_000, ttl=lookup_ttl_s)
        # The last value read of each, answered while Redis is unavailable (degraded mode).
        self._known_principals: LRUCache[str, Principal] = LRUCache(maxsize=100_000)
        self._known_publishers: LRUCache[str, Publisher] = LRUCache(maxsize=100_000)

    def drop_cached(self) -> None:
        """Forget cached lookups (after the data underneath was replaced wholesale, as in tests)."""
        self._principals.clear()
        self._publishers.clear()
        self._known_principals.clear()
        self._known_publishers.clear()

    # ---- principals -------------------------------------------------------------------------
    async def resolve_key(self, api_key: str) -> Principal | None:
        """The key's owner (cached for a second once found; unknown keys are always looked up).
        While Redis is unavailable, a key this process has seen keeps its owner; others raise."""
        digest = key_digest(api_key)
        found = self._principals.get(digest)
        if found is not None:
            return found
        try:
            raw = await self.r.get(keys.api_key(digest))
        except STORE_DOWN:
            if (known := self._known_principals.get(digest)) is None:
                raise
            return known
        if raw is None:
            return None
        role, _, pid = text(raw).partition(":")
        found = self._principals[digest] = self._known_principals[digest] = Principal(Role(role), pid)
        return found

    async def create_advertiser(self, name: str, id: str | None = None,
                                api_key: str | None = None) -> tuple[Advertiser, str]:
        aid = id or new_id("adv")
        api_key = api_key or new_api_key(Role.ADVERTISER)
        adv = Advertiser(id=aid, name=name, created_at=now_iso())
        if not await self.r.set(keys.advertiser(aid), adv.to_json(), nx=True):
            raise Conflict(f"advertiser id {aid!r} exists already; choose another id or omit it")
        await self.r.set(keys.api_key(key_digest(api_key)), f"{Role.ADVERTISER.value}:{aid}")
        await self.r.sadd(keys.ADVERTISERS, aid)
        return adv, api_key

    async def create_publisher(self, name: str, floor_fen: int, id: str | None = None,
                               api_key: str | None = None,
                               fallback_ad: dict[str, str] | None = None) -> tuple[Publisher, str]:
        pid = id or new_id("pub")
        api_key = api_key or new_api_key(Role.PUBLISHER)
        pub = Publisher(id=pid, name=name, floor_fen=floor_fen, created_at=now_iso(), fallback_ad=fallback_ad)
        if not await self.r.set(keys.publisher(pid), pub.to_json(), nx=True):
            raise Conflict(f"publisher id {pid!r} exists already; choose another id or omit it")
        await self.r.set(keys.api_key(key_digest(api_key)), f"{Role.PUBLISHER.value}:{pid}")
        await self.r.sadd(keys.PUBLISHERS, pid)
        return pub, api_key

    async def get_publisher(self, pid: str) -> Publisher:
        raw = await self.r.get(keys.publisher(pid))
        if raw is None:
            raise NotFound(f"publisher {pid!r} does not exist")
        return Publisher.from_json(raw)

    async def serving_publisher(self, pid: str) -> Publisher:
        """:meth:`get_publisher` as the match path needs it: at most ``lookup_ttl_s`` old, or
        while Redis is unavailable the last one read."""
        pub = self._publishers.get(pid)
        if pub is None:
            try:
                pub = await self.get_publisher(pid)
            except STORE_DOWN:
                if (pub := self._known_publishers.get(pid)) is None:
                    raise
                return pub
            self._publishers[pid] = self._known_publishers[pid] = pub
        return pub

    async def update_publisher(self, pid: str, changes: dict[str, Any]) -> Publisher:
        pub = dataclasses.replace(await self.get_publisher(pid), **changes)
        await self.r.set(keys.publisher(pid), pub.to_json(), xx=True)
        self._publishers.pop(pid, None)  # this process at once; others within lookup_ttl_s
        return pub

    async def get_advertiser(self, aid: str) -> Advertiser:
        raw = await self.r.get(keys.advertiser(aid))
        if raw is None:
            raise NotFound(f"advertiser {aid!r} does not exist")
        return Advertiser.from_json(raw)

    # ---- campaigns --------------------------------------------------------------------------
    async def list_campaigns(self, aid: str) -> list[Campaign]:
        ids = sorted(text_set(await self.r.smembers(keys.campaigns(aid))))
        if not ids:
            return []
        raws = await self.r.mget([keys.campaign(aid, c) for c in ids])
        return [Campaign.from_json(x) for x in raws if x is not None]

    async def get_campaign(self, aid: str, cid: str) -> Campaign:
        raw = await self.r.get(keys.campaign(aid, cid))
        if raw is None:
            raise NotFound(f"campaign {cid!r} does not exist (or belongs to another advertiser)")
        return Campaign.from_json(raw)

    async def create_campaign(self, aid: str, *, name: str, status: Status = Status.ACTIVE,
                              daily_budget_fen: int | None = None, total_budget_fen: int | None = None,
                              pacing: Pacing = Pacing.ASAP, frequency_cap: int | None = None,
                              cpa_event: str | None = None, cpa_bid_fen: int | None = None,
                              id: str | None = None) -> Campaign:
        ts = now_iso()
        cmp = Campaign(id=id or new_id("cmp"), advertiser_id=aid, name=name, status=status,
                       daily_budget_fen=daily_budget_fen, total_budget_fen=total_budget_fen,
                       created_at=ts, updated_at=ts, pacing=pacing, frequency_cap=frequency_cap,
                       cpa_event=cpa_event, cpa_bid_fen=cpa_bid_fen)
        await self._mirror_budget(cmp)
        async with self.r.pipeline(transaction=True) as p:
            p.set(keys.campaign(aid, cmp.id), cmp.to_json(), nx=True)
            p.sadd(keys.campaigns(aid), cmp.id)
            created, _ = await p.execute()
        if not created:
            raise Conflict(f"campaign id {cmp.id!r} exists already")
        await self._sync_blocked(block=[keys.blocked_campaign(cmp.id)] if status != Status.ACTIVE else [],
                                 unblock=[])
        return cmp

    async def update_campaign(self, aid: str, cid: str, changes: dict[str, Any]) -> Campaign:
        before = await self.get_campaign(aid, cid)
        cmp = dataclasses.replace(before, **changes, updated_at=now_iso())
        await self._mirror_budget(cmp)
        await self.r.set(keys.campaign(aid, cid), cmp.to_json(), xx=True)
        flag = keys.blocked_campaign(cid)
        # A status change changes whether the campaign's ads serve: they go to the change log.
        changed = [(aid, a.id) for a in await self.list_ads(aid, cid)] if cmp.status != before.status else []
        if cmp.status == Status.ACTIVE:
            await self._sync_blocked(block=[], unblock=[flag], changed=changed)
        else:
            await self._sync_blocked(block=[flag], unblock=[], changed=changed)
        return cmp

    async def delete_campaign(self, aid: str, cid: str) -> None:
        await self.get_campaign(aid, cid)
        ads = await self.list_ads(aid, cid)
        async with self.r.pipeline(transaction=True) as p:
            p.delete(keys.campaign(aid, cid))
            p.srem(keys.campaigns(aid), cid)
            for ad in ads:
                p.delete(keys.ad(aid, ad.id))
                p.srem(keys.ads(aid), ad.id)
            await p.execute()
        await self._sync_blocked(block=[keys.blocked_campaign(cid)] + [keys.blocked_ad(a.id) for a in ads],
                                 unblock=[], changed=[(aid, a.id) for a in ads], forget=[a.id for a in ads])

    async def _mirror_budget(self, c: Campaign) -> None:
        """Budget settings in the campaign's billing slot, read by the click script. Written before
        the campaign itself, so a campaign that exists always has its budget mirrored."""
        none = keys.UNLIMITED
        await self.r.hset(keys.budget(c.id), mapping={
            "daily": none if c.daily_budget_fen is None else c.daily_budget_fen,
            "total": none if c.total_budget_fen is None else c.total_budget_fen,
            # Pacing(...): a campaign read back from JSON holds the plain string.
            "pacing": Pacing(c.pacing).value, "freq_cap": none if c.frequency_cap is None else c.frequency_cap,
            # how the campaign pays, read with the budget when it enters auctions ('' / 0: per click)
            "cpa_event": c.cpa_event or "", "cpa_bid": c.cpa_bid_fen or 0,
        })
        await self.r.sadd(keys.BILLING_CAMPAIGNS, c.id)

    # ---- ads --------------------------------------------------------------------------------
    async def list_ads(self, aid: str, cid: str | None = None) -> list[AdRecord]:
        ids = sorted(text_set(await self.r.smembers(keys.ads(aid))))
        if not ids:
            return []
        raws = await self.r.mget([keys.ad(aid, a) for a in ids])
        ads = [AdRecord.from_json(x) for x in raws if x is not None]
        return [a for a in ads if cid is None or a.campaign_id == cid]

    async def get_ad(self, aid: str, ad_id: str) -> AdRecord:
        raw = await self.r.get(keys.ad(aid, ad_id))
        if raw is None:
            raise NotFound(f"ad {ad_id!r} does not exist (or belongs to another advertiser)")
        return AdRecord.from_json(raw)

    async def create_ads(self, aid: str, cid: str, items: Sequence[dict[str, Any]]) -> list[AdRecord]:
        """Create all ``items`` in campaign ``cid`` in one transaction: all or nothing."""
        await self.get_campaign(aid, cid)
        ts = now_iso()
        records = []
        for item in items:
            fields = dict(item)
            ad_id = fields.pop("id", None) or new_id("ad")
            records.append(AdRecord(id=ad_id, campaign_id=cid, advertiser_id=aid, created_at=ts,
                                    updated_at=ts, **fields))
        if len({r.id for r in records}) != len(records):
            raise Conflict("two ads in one request have the same id; give each its own")
        async with self.r.pipeline(transaction=True) as p:
            for rec in records:
                p.set(keys.ad(aid, rec.id), rec.to_json())
            if records:
                p.sadd(keys.ads(aid), *[r.id for r in records])
            await p.execute()
        await self._sync_blocked(block=[keys.blocked_ad(r.id) for r in records if not r.serves],
                                 unblock=[], changed=[(aid, r.id) for r in records], reviewed=records)
        return records

    async def update_ad(self, aid: str, ad_id: str, changes: dict[str, Any],
                        revise: Callable[[AdRecord, dict[str, Any]], dict[str, Any]] | None = None) -> AdRecord:
        """Apply ``changes`` (through ``revise(current, changes)`` when given: creative review adds
        its verdict there) to the ad as stored at the moment of writing: the read and the write are
        one optimistic transaction, retried when someone else (an admin deciding its review) wrote
        the ad in between, so no concurrent write is lost."""
        key = keys.ad(aid, ad_id)
        for _attempt in range(_WRITE_ATTEMPTS):
            async with self.r.pipeline(transaction=True) as p:
                try:
                    await p.watch(key)
                    raw = await p.get(key)
                    if raw is None:
                        raise NotFound(f"ad {ad_id!r} does not exist (or belongs to another advertiser)")
                    current = AdRecord.from_json(raw)
                    ad = dataclasses.replace(current, **(revise(current, changes) if revise else changes),
                                             updated_at=now_iso())
                    p.multi()
                    p.set(key, ad.to_json(), xx=True)
                    await p.execute()
                except WatchError:
                    continue
            await self.publish_ad(ad)
            return ad
        raise Conflict(f"ad {ad_id!r} kept changing while it was being updated; try again")

    async def publish_ad(self, ad: AdRecord) -> None:
        """After ``ad`` was written: whether it may serve (the blocked set), the change log, and the
        review queue, in one transaction; every serving process follows within a second. The ad is
        read again first, so of two writers publishing out of order the later one still publishes
        what is stored (not what it wrote)."""
        raw = await self.r.get(keys.ad(ad.advertiser_id, ad.id))
        if raw is None:  # deleted meanwhile: delete_ad published that
            return
        ad = AdRecord.from_json(raw)
        flag = [keys.blocked_ad(ad.id)]
        await self._sync_blocked(block=[] if ad.serves else flag, unblock=flag if ad.serves else [],
                                 changed=[(ad.advertiser_id, ad.id)], reviewed=[ad])

    async def delete_ad(self, aid: str, ad_id: str) -> None:
        await self.get_ad(aid, ad_id)
        async with self.r.pipeline(transaction=True) as p:
            p.delete(keys.ad(aid, ad_id))
            p.srem(keys.ads(aid), ad_id)
            await p.execute()
        await self._sync_blocked(block=[keys.blocked_ad(ad_id)], unblock=[], changed=[(aid, ad_id)], forget=[ad_id])

    # ---- whole catalog ----------------------------------------------------------------------
    async def all_ads(self) -> list[AdRecord]:
        """Every stored ad of every advertiser, ordered by (advertiser, ad id)."""
        out: list[AdRecord] = []
        for aid in sorted(text_set(await self.r.smembers(keys.ADVERTISERS))):
            out.extend(await self.list_ads(aid))
        return out

    async def servable_ads(self) -> list[AdRecord]:
        """Ads an index build should include: serving ads (active, not held by review) of active
        campaigns."""
        out: list[AdRecord] = []
        for aid in sorted(text_set(await self.r.smembers(keys.ADVERTISERS))):
            active = {c.id for c in await self.list_campaigns(aid) if c.status == Status.ACTIVE}
            out.extend(a for a in await self.list_ads(aid) if a.serves and a.campaign_id in active)
        return out

    async def blocked(self) -> set[str]:
        return set(text_set(await self.r.smembers(keys.BLOCKED)))

    async def version(self) -> int:
        return int(await self.r.get(keys.CATALOG_VERSION) or 0)

    async def servable_ad(self, aid: str, ad_id: str) -> AdRecord | None:
        """The ad if it exists, serves (active, not held by review) and its campaign is active."""
        raw = await self.r.get(keys.ad(aid, ad_id))
        if raw is None:
            return None
        ad = AdRecord.from_json(raw)
        if not ad.serves:
            return None
        raw_cmp = await self.r.get(keys.campaign(aid, ad.campaign_id))
        if raw_cmp is None or Campaign.from_json(raw_cmp).status != Status.ACTIVE:
            return None
        return ad

    # ---- change log and published index ------------------------------------------------------
    async def feed_state(self) -> tuple[int, str | None]:
        """The catalog version and the published index version, in one round trip."""
        version, index = await self.r.mget([keys.CATALOG_VERSION, keys.INDEX_CURRENT])
        return int(version or 0), (text(index) if index is not None else None)

    async def announce_index(self, version: str) -> None:
        """Tell every serving process that index ``version`` is published."""
        await self.r.set(keys.INDEX_CURRENT, version)

    async def change_log_position(self) -> str:
        """Id of the newest change-log entry ("0-0" when there is none)."""
        last = stream_entries(await self.r.xrevrange(keys.CHANGES, count=1))
        return last[0][0] if last else "0-0"

    async def changes_after(self, position: str, count: int = 10_000) -> tuple[list[tuple[str, str]], str]:
        """(advertiser, ad) pairs logged after ``position``, oldest first, at most ``count``, and
        the position of the last one returned (``position`` itself when there are none)."""
        entries = stream_entries(await self.r.xrange(keys.CHANGES, min=f"({position}", count=count))
        out = [(fields["a"], fields["ad"]) for _, fields in entries]
        return out, entries[-1][0] if entries else position

    async def _sync_blocked(self, block: Iterable[str], unblock: Iterable[str],
                            changed: Iterable[tuple[str, str]] = (), reviewed: Iterable[AdRecord] = (),
                            forget: Iterable[str] = ()) -> None:
        """Update the blocked set, log the changed ads, keep the review index (``reviewed`` ads as
        they are now, ``forget``: deleted ad ids) and bump the catalog version, in one transaction
        (the keys share the ``{g}`` slot). Called after the catalog write itself: a crash in
        between leaves a change unlogged until the next full build, never a logged change that
        did not happen."""
        block, unblock = list(block), list(unblock)
        async with self.r.pipeline(transaction=True) as p:
            for ad in reviewed:
                status = ReviewStatus(ad.review_status)
                if status.servable and status != ReviewStatus.APPROVED:  # never flagged (or no longer)
                    p.hdel(keys.REVIEW_ADS, ad.id)
                else:
                    p.hset(keys.REVIEW_ADS, ad.id, ad.advertiser_id)
                if status == ReviewStatus.PENDING:
                    p.sadd(keys.REVIEW_PENDING, ad.id)
                else:
                    p.srem(keys.REVIEW_PENDING, ad.id)
            for ad_id in forget:
                p.hdel(keys.REVIEW_ADS, ad_id)
                p.srem(keys.REVIEW_PENDING, ad_id)
            if block:
                p.sadd(keys.BLOCKED, *block)
            if unblock:
                p.srem(keys.BLOCKED, *unblock)
            for aid, ad_id in changed:
                p.xadd(keys.CHANGES, {"a": aid, "ad": ad_id}, maxlen=keys.CHANGES_MAXLEN, approximate=True)
            p.incr(keys.CATALOG_VERSION)
            await p.execute()
