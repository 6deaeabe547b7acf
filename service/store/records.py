"""Catalog records as stored in Redis (frozen dataclasses; the wire schemas live in service.api.catalog_schemas)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Self


class Status(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


class ReviewStatus(StrEnum):
    """Where an ad stands in creative review (service.review.creative_review)."""

    UNREVIEWED = "unreviewed"  # stored before creative review existed, or loaded outside the API
    PASSED = "passed"  # the automatic review found nothing
    PENDING = "pending_review"  # flagged: waits for an admin, not served
    APPROVED = "approved"  # flagged, then approved by an admin
    REJECTED = "rejected"  # flagged, then rejected by an admin (with a reason), not served

    @property
    def servable(self) -> bool:
        return self in (ReviewStatus.UNREVIEWED, ReviewStatus.PASSED, ReviewStatus.APPROVED)


class Pacing(StrEnum):
    ASAP = "asap"  # enter every auction while budget lasts
    EVEN = "even"  # spread the daily budget over the day


class Role(StrEnum):
    ADMIN = "admin"
    ADVERTISER = "advertiser"
    PUBLISHER = "publisher"
    EXCHANGE = "exchange"  # an OpenRTB exchange calling the bidder (service/openrtb/)


@dataclass(frozen=True, slots=True)
class Record:
    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Self:
        data: dict[str, Any] = json.loads(raw)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in fields}
        for name, f in fields.items():
            if name in kwargs and isinstance(kwargs[name], list) and "tuple" in str(f.type):
                kwargs[name] = tuple(tuple(x) if isinstance(x, list) else x for x in kwargs[name])
        return cls(**kwargs)


@dataclass(frozen=True, slots=True)
class Advertiser(Record):
    id: str
    name: str
    created_at: str


@dataclass(frozen=True, slots=True)
class Publisher(Record):
    id: str
    name: str
    floor_fen: int
    created_at: str
    fallback_ad: dict[str, str] | None = None
    # Brand controls (matching.brand), applied to /v1/match, the tag and OpenRTB alike.
    blocked_categories: tuple[str, ...] = ()  # IAB ids: ads in them (or their children) never show
    blocked_advertisers: tuple[str, ...] = ()  # advertiser ids
    blocked_domains: tuple[str, ...] = ()  # advertiser domains (landing URL hosts), subdomains too
    ad_label: str = "广告"  # the label the tag shows on every ad (China's Advertising Law, art. 14)


@dataclass(frozen=True, slots=True)
class Site(Record):
    """A publisher's site for the ad tag: its public token and the page origins allowed to use it."""

    token: str
    publisher_id: str
    name: str
    origins: tuple[str, ...]
    created_at: str


@dataclass(frozen=True, slots=True)
class Campaign(Record):
    id: str
    advertiser_id: str
    name: str
    status: Status
    daily_budget_fen: int | None
    total_budget_fen: int | None
    created_at: str
    updated_at: str
    pacing: Pacing = Pacing.ASAP
    frequency_cap: int | None = None  # impressions per user per day
    # Pay per conversion: set together; the campaign's ads bid cpa_bid_fen per conversion of
    # cpa_event instead of their per-click bids, and their clicks are free.
    cpa_event: str | None = None
    cpa_bid_fen: int | None = None


@dataclass(frozen=True, slots=True)
class AdRecord(Record):
    id: str
    campaign_id: str
    advertiser_id: str
    title: str
    description: str
    landing_url: str
    keywords: tuple[str, ...]
    bid_fen: int
    status: Status
    created_at: str
    updated_at: str
    keyword_bids: tuple[tuple[str, int], ...] = ()
    negative_keywords: tuple[str, ...] = ()
    match_types: tuple[tuple[str, str], ...] = ()
    target_categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    allow_sensitive: bool = False
    # Creative review (service.review.creative_review): the status, the automatic review's findings as
    # (rule, article, term, field), and the admin's note (the reason of a rejection) and time.
    review_status: ReviewStatus = ReviewStatus.UNREVIEWED
    review_findings: tuple[tuple[str, str, str, str], ...] = ()
    review_note: str = ""
    reviewed_at: str = ""

    @property
    def serves(self) -> bool:
        """Active, and not held back by creative review (its campaign must be active too)."""
        return self.status == Status.ACTIVE and ReviewStatus(self.review_status).servable
