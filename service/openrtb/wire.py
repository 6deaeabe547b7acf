"""OpenRTB 2.6 wire models: only the fields the bidder reads, everything else ignored.

The spec (§2.6) asks bidders to ignore unknown fields, and exchanges send many (and Prebid
Server's ``ext.prebid``), so every model allows extra fields and keeps none of them. Both the 2.6
field places and the 2.5 ``ext`` places Prebid Server writes when it down-converts a request
(``regs.ext.gdpr``, ``user.ext.consent``, ``source.ext.schain``, ``imp.ext.prebid.is_rewarded_inventory``)
are read; :mod:`service.openrtb.request` picks whichever is present.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_IMPS = 50
MAX_LIST = 500


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Format(_Lenient):
    w: int | None = Field(default=None, ge=0, le=100_000)
    h: int | None = Field(default=None, ge=0, le=100_000)


class Banner(_Lenient):
    w: int | None = Field(default=None, ge=0, le=100_000)
    h: int | None = Field(default=None, ge=0, le=100_000)
    format: list[Format] = Field(default_factory=list, max_length=MAX_LIST)
    battr: list[int] = Field(default_factory=list, max_length=MAX_LIST)


class Imp(_Lenient):
    id: str = Field(min_length=1, max_length=256)
    banner: Banner | None = None
    video: dict[str, Any] | None = None
    audio: dict[str, Any] | None = None
    native: dict[str, Any] | None = None
    bidfloor: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    bidfloorcur: str = Field(default="USD", max_length=8)
    tagid: str | None = Field(default=None, max_length=1024)
    rwdd: int | None = None
    ext: dict[str, Any] | None = None


class Content(_Lenient):
    title: str | None = Field(default=None, max_length=2048)
    series: str | None = Field(default=None, max_length=2048)
    keywords: str | None = Field(default=None, max_length=10_000)
    kwarray: list[str] = Field(default_factory=list, max_length=MAX_LIST)
    cat: list[str] = Field(default_factory=list, max_length=MAX_LIST)
    cattax: int | None = None
    url: str | None = Field(default=None, max_length=8192)
    language: str | None = Field(default=None, max_length=16)
    langb: str | None = Field(default=None, max_length=64)


class Site(_Lenient):
    id: str | None = Field(default=None, max_length=256)
    domain: str | None = Field(default=None, max_length=1024)
    page: str | None = Field(default=None, max_length=8192)
    cat: list[str] = Field(default_factory=list, max_length=MAX_LIST)
    sectioncat: list[str] = Field(default_factory=list, max_length=MAX_LIST)
    pagecat: list[str] = Field(default_factory=list, max_length=MAX_LIST)
    cattax: int | None = None
    keywords: str | None = Field(default=None, max_length=10_000)
    kwarray: list[str] = Field(default_factory=list, max_length=MAX_LIST)
    search: str | None = Field(default=None, max_length=2048)
    content: Content | None = None


class App(_Lenient):
    id: str | None = None
    content: Content | None = None
    keywords: str | None = Field(default=None, max_length=10_000)
    cat: list[str] = Field(default_factory=list, max_length=MAX_LIST)
    cattax: int | None = None


class Regs(_Lenient):
    coppa: int | None = None
    gdpr: int | None = None
    us_privacy: str | None = None
    ext: dict[str, Any] | None = None


class BidRequest(_Lenient):
    id: str = Field(min_length=1, max_length=256)
    imp: list[Imp] = Field(min_length=1, max_length=MAX_IMPS)
    site: Site | None = None
    app: App | None = None
    test: int = Field(default=0, ge=0, le=1)
    at: int = Field(default=2, ge=1)
    tmax: int | None = Field(default=None, ge=0)
    cur: list[str] = Field(default_factory=list, max_length=64)
    wlang: list[str] = Field(default_factory=list, max_length=MAX_LIST)
    wlangb: list[str] = Field(default_factory=list, max_length=MAX_LIST)
    bcat: list[str] = Field(default_factory=list, max_length=MAX_LIST)
    cattax: int | None = None
    badv: list[str] = Field(default_factory=list, max_length=MAX_LIST)
    regs: Regs | None = None
    ext: dict[str, Any] | None = None


class Bid(BaseModel):
    id: str
    impid: str
    price: float
    adm: str
    nurl: str
    burl: str
    lurl: str | None = None
    adomain: list[str]
    crid: str
    cid: str
    cat: list[str]
    cattax: int
    w: int
    h: int
    mtype: int = 1
    language: str | None = None
    langb: str | None = None


class SeatBid(BaseModel):
    seat: str
    bid: list[Bid]


class BidResponse(BaseModel):
    id: str
    seatbid: list[SeatBid] = Field(default_factory=list)
    bidid: str | None = None
    cur: str | None = None
    nbr: int | None = None
