"""Creative review of ads under the Advertising Law: the automatic check of every ad created or
edited through the API (:func:`matching.ad_review.review_ad` on its title, description, keywords
and target categories), and the admins' queue and decisions.

Contract: an ad with findings is stored ``pending_review`` with them and does not serve
(:attr:`AdRecord.serves`: the blocked set, the index build and the live overlay all follow it); one
without is ``passed``. An edit that changes any reviewed field runs the review again — an approved
or rejected ad included — and other edits (bid, status, landing URL …) keep the verdict. The edit's
read and write are one optimistic transaction (CatalogStore.update_ad), so an edit racing an
admin's decision never overwrites it. An admin
approves a flagged ad (it serves within about a second, through the change log, like any catalog
change) or rejects it with a reason the advertiser sees (it stays unserved). Ads stored before
review existed, or loaded outside the API (the demo, evaluation scripts), are ``unreviewed`` and
serve; editing one reviews it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from matching.ad_review import review_ad
from service.errors import Conflict, NotFound
from service.store import keys
from service.store.catalog import CatalogStore, now_iso
from service.store.records import AdRecord, ReviewStatus
from service.store.replies import text, text_set

REVIEWED_FIELDS = ("title", "description", "keywords", "target_categories")


def auto_review(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The review fields of an ad with these ``fields`` (title, description, keywords, target
    categories), to store with it: pending with the findings, or passed."""
    findings = review_ad(str(fields.get("title", "")), str(fields.get("description", "")),
                         fields.get("keywords", ()), fields.get("target_categories", ()))
    return {"review_status": ReviewStatus.PENDING if findings else ReviewStatus.PASSED,
            "review_findings": tuple((f.rule, f.article, f.term, f.field) for f in findings),
            "review_note": "", "reviewed_at": ""}


def reviewed_changes(current: AdRecord, changes: Mapping[str, Any]) -> dict[str, Any]:
    """``changes`` to ``current``, with a new review when they change a reviewed field or the ad
    was never reviewed (stored before review existed, or loaded outside the API)."""
    out = dict(changes)
    never = ReviewStatus(current.review_status) == ReviewStatus.UNREVIEWED
    if never or any(k in changes and changes[k] != getattr(current, k) for k in REVIEWED_FIELDS):
        after = {k: out.get(k, getattr(current, k)) for k in REVIEWED_FIELDS}
        out.update(auto_review(after))
    return out


class ReviewQueue:
    """The admins' side: flagged ads by id, pending ones in order, approve and reject."""

    def __init__(self, catalog: CatalogStore) -> None:
        self.catalog = catalog
        self.r: aioredis.Redis = catalog.r

    async def pending(self, limit: int) -> list[AdRecord]:
        """Ads waiting for a decision, oldest change first, at most ``limit``."""
        ids = sorted(text_set(await self.r.smembers(keys.REVIEW_PENDING)))
        if not ids:
            return []
        owners = await self.r.hmget(keys.REVIEW_ADS, ids)
        raws = await self.r.mget([keys.ad(text(a), i) for i, a in zip(ids, owners, strict=True) if a is not None])
        ads = [AdRecord.from_json(x) for x in raws if x is not None]
        waiting = [a for a in ads if a.review_status == ReviewStatus.PENDING]
        return sorted(waiting, key=lambda a: (a.updated_at, a.id))[:limit]

    async def decide(self, ad_id: str, *, approve: bool, note: str, updated_at: str | None = None) -> AdRecord:
        """Approve or reject the flagged ad ``ad_id`` (``note``: the reason of a rejection).

        Raises NotFound for an ad never flagged (or deleted), Conflict when it is already in that
        state or changed since ``updated_at`` (the version the admin looked at)."""
        owner = await self.r.hget(keys.REVIEW_ADS, ad_id)
        if owner is None:
            raise NotFound(f"ad {ad_id!r} was never flagged by creative review (or does not exist); "
                           "GET /v1/review/ads lists the ads waiting for a decision")
        key = keys.ad(text(owner), ad_id)
        target = ReviewStatus.APPROVED if approve else ReviewStatus.REJECTED
        async with self.r.pipeline(transaction=True) as p:
            try:
                await p.watch(key)
                raw = await p.get(key)
                if raw is None:
                    raise NotFound(f"ad {ad_id!r} was deleted by its advertiser")
                ad = AdRecord.from_json(raw)
                if ad.review_status == target:
                    raise Conflict(f"ad {ad_id!r} is {target.value} already")
                if ad.review_status not in (ReviewStatus.PENDING, ReviewStatus.APPROVED, ReviewStatus.REJECTED):
                    raise Conflict(f"ad {ad_id!r} was edited and passed review since it was flagged; "
                                   "there is nothing to decide")
                if updated_at is not None and updated_at != ad.updated_at:
                    raise Conflict(f"ad {ad_id!r} was edited at {ad.updated_at}, after the version you "
                                   f"reviewed ({updated_at}); look at it again")
                ad = dataclasses.replace(ad, review_status=target, review_note=note, reviewed_at=now_iso())
                p.multi()
                p.set(key, ad.to_json(), xx=True)
                await p.execute()
            except WatchError:
                raise Conflict(f"ad {ad_id!r} changed while it was being decided; look at it again") from None
        await self.catalog.publish_ad(ad)
        return ad
