"""Wire schemas of the catalog: advertisers, publishers, campaigns and ads as created, changed and
read back, their creative review and CSV upload results (schemas.py holds the rest of the API's).
Limits here reject bad input with a 422 before any of our code runs."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, model_validator

from matching.match_types import MatchType, parse_keyword
from service.api.schemas import HAS_TEXT, CategoryId, EventType, Fen, Strict, Text
from service.store.records import Pacing, ReviewStatus, Status

MAX_KEYWORD_CHARS = 40
MAX_KEYWORDS = 1000
MAX_BID_FEN = 1_000_000  # 10,000 yuan per click: anything above is a typo
MAX_CPA_FEN = 100_000_000  # 1,000,000 yuan per conversion


def _keyword(value: str) -> str:
    kw = value.strip()
    if not kw:
        raise ValueError("a keyword is empty; remove it or write the word")
    if not parse_keyword(kw)[0]:
        raise ValueError(f"keyword {kw!r} has nothing inside its match-type marks; write the word inside them")
    if len(kw) > MAX_KEYWORD_CHARS:
        raise ValueError(f"keyword {kw[:12]!r}… has {len(kw)} characters; keep each keyword to "
                         f"{MAX_KEYWORD_CHARS} or fewer")
    return kw


# The keyword limits, stated in the OpenAPI document; the validator keeps its own messages.
Keyword = Annotated[str, AfterValidator(_keyword), Field(json_schema_extra={
    "minLength": 1, "maxLength": MAX_KEYWORD_CHARS, "pattern": HAS_TEXT})]
BidFen = Annotated[int, Field(ge=1, le=MAX_BID_FEN, description="cost-per-click bid in fen (分)")]
CpaBidFen = Annotated[int, Field(ge=1, le=MAX_CPA_FEN, description="bid per conversion in fen (分)")]


# ---- admin --------------------------------------------------------------------------------------
class AdvertiserIn(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "华东房产集团"}]})

    name: Text = Field(max_length=100, examples=["华东房产集团"])


class AdvertiserOut(BaseModel):
    id: str
    name: str
    api_key: str = Field(description="shown once; store it, only its hash is kept")


class FallbackAd(Strict):
    title: Text = Field(max_length=60)
    description: str = Field(default="", max_length=200)
    landing_url: HttpUrl


class PublisherIn(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "新闻早知道", "floor_fen": 10, "fallback_ad": {
        "title": "新闻早知道 App", "description": "下载客户端，新闻早知道", "landing_url": "https://example.com/app"}}]})

    name: Text = Field(max_length=100, examples=["新闻早知道"])
    floor_fen: Fen = Field(default=1, description="lowest price per click the publisher accepts")
    fallback_ad: FallbackAd | None = Field(default=None, description="house ad shown when nothing fits")


class PublisherOut(BaseModel):
    id: str
    name: str
    floor_fen: int
    api_key: str = Field(description="shown once; store it, only its hash is kept")


class PublisherPatch(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"floor_fen": 20}]})

    name: Text | None = Field(default=None, max_length=100)
    floor_fen: Fen | None = Field(default=None, description="lowest price per click the publisher accepts")
    fallback_ad: FallbackAd | None = Field(default=None, description="house ad shown when nothing fits")


class PublisherView(BaseModel):
    id: str
    name: str
    floor_fen: int
    fallback_ad: dict[str, str] | None


# ---- campaigns and ads --------------------------------------------------------------------------
def _check_cpa(event: str | None, bid: int | None) -> None:
    if (event is None) != (bid is None):
        raise ValueError("cpa_event and cpa_bid_fen go together: send both to pay per conversion, "
                         "or neither to pay per click")


class CampaignIn(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "春季楼盘推广", "daily_budget_fen": 500000, "total_budget_fen": 5000000}]})

    name: Text = Field(max_length=100, examples=["春季楼盘推广"])
    status: Status = Status.ACTIVE
    daily_budget_fen: Fen | None = Field(default=None, examples=[500000])
    total_budget_fen: Fen | None = Field(default=None, examples=[5000000])
    pacing: Pacing = Field(default=Pacing.ASAP, description="asap, or even: spread the daily budget")
    frequency_cap: int | None = Field(default=None, ge=1, le=1000,
                                      description="impressions per user (user_key) per day")
    cpa_event: EventType | None = Field(
        default=None, description="pay per conversion of this event type instead of per click (with cpa_bid_fen)")
    cpa_bid_fen: CpaBidFen | None = Field(default=None, examples=[5000])

    @model_validator(mode="after")
    def _cpa(self) -> CampaignIn:
        _check_cpa(self.cpa_event, self.cpa_bid_fen)
        return self


class CampaignPatch(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "春季楼盘推广（加投）", "daily_budget_fen": 800000}]})

    name: Text | None = Field(default=None, max_length=100)
    status: Status | None = None
    daily_budget_fen: Fen | None = None
    total_budget_fen: Fen | None = None
    pacing: Pacing | None = None
    frequency_cap: int | None = Field(default=None, ge=1, le=1000)
    cpa_event: EventType | None = Field(default=None, description="with cpa_bid_fen: pay per conversion")
    cpa_bid_fen: CpaBidFen | None = None

    @model_validator(mode="after")
    def _cpa(self) -> CampaignPatch:
        if "cpa_event" in self.model_fields_set or "cpa_bid_fen" in self.model_fields_set:
            _check_cpa(self.cpa_event, self.cpa_bid_fen)
        return self


class CampaignOut(BaseModel):
    id: str
    advertiser_id: str
    name: str
    status: Status
    daily_budget_fen: int | None
    total_budget_fen: int | None
    pacing: Pacing
    frequency_cap: int | None
    cpa_event: str | None = None
    cpa_bid_fen: int | None = None
    created_at: str
    updated_at: str


def _check_keyword_bids(keywords: list[str] | None, bids: dict[str, int] | None) -> None:
    if bids and keywords is not None:
        unknown = sorted(set(bids) - set(keywords))
        if unknown:
            raise ValueError(f"keyword_bids names {unknown[:5]} which are not in keywords; "
                             "add them to keywords or remove their bids")


KEYWORD_BIDS = ("per-keyword CPC bids; each key must be one of the ad's keywords, without its match-type "
                "marks (another key gets a 422)")


class AdIn(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "title": "3G手机套餐 长话市话漫游一个价", "description": "全国通话不分长市漫，月租低至18元",
        "landing_url": "https://example.com/plan", "keywords": ["手机套餐", "长话", "市话", "漫游", "3g"],
        "bid_fen": 120, "keyword_bids": {"手机套餐": 180}, "negative_keywords": ["招聘"]}]})

    title: Text = Field(max_length=60, examples=["3G手机套餐 长话市话漫游一个价"])
    description: str = Field(default="", max_length=200, examples=["全国通话不分长市漫，月租低至18元"])
    landing_url: HttpUrl = Field(examples=["https://example.com/plan"])
    keywords: list[Keyword] = Field(
        min_length=1, max_length=MAX_KEYWORDS, examples=[["手机套餐", "[长话]", '"市话"', "漫游", "3g"]],
        description='match types: [精确] exact, "短语" phrase (Traditional form and width variants too), '
                    "bare: broad (semantic similarity is enough)")
    bid_fen: BidFen = Field(examples=[120])
    keyword_bids: dict[Keyword, BidFen] = Field(default_factory=dict, description=KEYWORD_BIDS)
    negative_keywords: list[Keyword] = Field(default_factory=list, max_length=MAX_KEYWORDS)
    status: Status = Status.ACTIVE
    target_categories: list[CategoryId] = Field(default_factory=list, max_length=50,
                                                description="IAB ids: show only on pages in one of them")
    exclude_categories: list[CategoryId] = Field(default_factory=list, max_length=50,
                                                 description="IAB ids: never show on pages in one of them")
    allow_sensitive: bool = Field(default=False, description="may show on pages about sensitive topics")

    @model_validator(mode="after")
    def _bids_name_keywords(self) -> AdIn:
        _check_keyword_bids([parse_keyword(k)[0] for k in self.keywords], self.keyword_bids)
        return self

    def to_fields(self) -> dict[str, Any]:
        return {
            "title": self.title, "description": self.description, "landing_url": str(self.landing_url),
            "bid_fen": self.bid_fen, "keyword_bids": tuple(sorted(self.keyword_bids.items())),
            "negative_keywords": tuple(dict.fromkeys(self.negative_keywords)), "status": self.status,
            "target_categories": tuple(dict.fromkeys(self.target_categories)),
            "exclude_categories": tuple(dict.fromkeys(self.exclude_categories)),
            "allow_sensitive": self.allow_sensitive, **keyword_fields(self.keywords),
        }


def keyword_fields(raw: list[str]) -> dict[str, Any]:
    """Keywords as written (with match-type marks) → plain keywords and their declared types."""
    parsed = dict(parse_keyword(k) for k in raw)
    return {"keywords": tuple(parsed),
            "match_types": tuple((k, t.value) for k, t in parsed.items() if t != MatchType.BROAD)}


class AdPatch(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"bid_fen": 150, "keywords": ["手机套餐", "流量卡", "漫游"], "status": "paused"}]})

    title: Text | None = Field(default=None, max_length=60)
    description: str | None = Field(default=None, max_length=200)
    landing_url: HttpUrl | None = None
    keywords: list[Keyword] | None = Field(default=None, min_length=1, max_length=MAX_KEYWORDS)
    bid_fen: BidFen | None = None
    keyword_bids: dict[Keyword, BidFen] | None = Field(default=None, description=KEYWORD_BIDS)
    negative_keywords: list[Keyword] | None = Field(default=None, max_length=MAX_KEYWORDS)
    status: Status | None = None
    target_categories: list[CategoryId] | None = Field(default=None, max_length=50)
    exclude_categories: list[CategoryId] | None = Field(default=None, max_length=50)
    allow_sensitive: bool | None = None

    @model_validator(mode="after")
    def _bids_name_keywords(self) -> AdPatch:
        plain = [parse_keyword(k)[0] for k in self.keywords] if self.keywords is not None else None
        _check_keyword_bids(plain, self.keyword_bids)
        return self

    def to_changes(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if value is None:
                continue
            if name == "keywords":
                out.update(keyword_fields(value))
                continue
            if name in ("negative_keywords", "target_categories", "exclude_categories"):
                value = tuple(dict.fromkeys(value))
            elif name == "keyword_bids":
                value = tuple(sorted(value.items()))
            elif name == "landing_url":
                value = str(value)
            out[name] = value
        return out


class ReviewReason(BaseModel):
    rule: str = Field(description="the rule's id in matching/data/ad_law.tsv", examples=["absolute_terms"])
    article: str = Field(description="the Advertising Law (广告法) article it comes from", examples=["9(3)"])
    term: str = Field(description="what matched, normalised (Simplified, half-width), or an IAB category id",
                      examples=["国家级"])
    field: str = Field(description="title, description, keywords or target_categories", examples=["title"])
    reason_zh: str = Field(examples=["使用绝对化用语（第九条第三项禁止“国家级”“最高级”“最佳”等用语）"])
    reason_en: str = Field(examples=['absolute term: Art. 9(3) forbids "national-level", "highest-grade", "best" '
                                     "and the like"])


class ReviewOut(BaseModel):
    status: ReviewStatus = Field(description="passed or approved: may serve; pending_review: waits for an "
                                             "admin, not served; rejected: not served (see note); "
                                             "unreviewed: stored before creative review, serves")
    reasons: list[ReviewReason] = Field(description="what the automatic review (广告法) found")
    note: str | None = Field(default=None, description="the reviewer's note: why the ad was rejected")
    reviewed_at: str | None = None


class AdOut(BaseModel):
    id: str
    campaign_id: str
    advertiser_id: str
    title: str
    description: str
    landing_url: str
    keywords: list[str]
    bid_fen: int
    keyword_bids: dict[str, int]
    negative_keywords: list[str]
    target_categories: list[str]
    exclude_categories: list[str]
    allow_sensitive: bool
    status: Status
    created_at: str
    updated_at: str
    review: ReviewOut


class UploadRowReview(BaseModel):
    line: int = Field(description="the row's line in the CSV file (the header is line 1)")
    ad_id: str
    status: ReviewStatus
    reasons: list[ReviewReason]


class UploadResult(BaseModel):
    created: int
    ads: list[AdOut]
    flagged: list[UploadRowReview] = Field(
        default_factory=list, description="rows creative review flagged: stored, pending_review, not served "
                                          "until an admin approves them")


class ApproveIn(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"note": "已核验医疗广告审查证明"}]})

    note: str = Field(default="", max_length=500, description="why, for the record")
    updated_at: str | None = Field(default=None, max_length=40,
                                   description="the ad's updated_at you reviewed: refused (409) if it changed since")


class RejectIn(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "标题含“国家级”，请删除绝对化用语后重新提交"}]})

    reason: str = Field(min_length=1, max_length=500, description="shown to the advertiser")
    updated_at: str | None = Field(default=None, max_length=40,
                                   description="the ad's updated_at you reviewed: refused (409) if it changed since")
