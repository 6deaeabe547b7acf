"""Wire schemas: what clients send and receive. Limits here reject bad input with a 422 before
any of our code runs; the domain uses the frozen dataclasses of matching.types and records."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

from matching.categories import load_taxonomy
from matching.conversions import EVENT_PATTERN
from matching.match_types import MatchType, parse_keyword
from matching.user_keys import personal_data_kind
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


def _category(value: str) -> str:
    if value not in load_taxonomy():
        raise ValueError(f"{value!r} is not an IAB Content Taxonomy 3.1 id admatch knows; "
                         "see GET /v1/categories for the ids")
    return value


# The limits the validators above enforce, stated in the OpenAPI document; the validators keep
# their own messages (what to change), which pydantic's built-in constraints would replace.
HAS_TEXT = r"\S"  # some character that is not white space (values are stripped first)
Keyword = Annotated[str, AfterValidator(_keyword), Field(json_schema_extra={
    "minLength": 1, "maxLength": MAX_KEYWORD_CHARS, "pattern": HAS_TEXT})]
CategoryId = Annotated[str, AfterValidator(_category), Field(json_schema_extra=lambda s: s.update(
    enum=[c.id for c in load_taxonomy()], description="an IAB Content Taxonomy 3.1 id from GET /v1/categories"))]
# A required name or title: white space alone is refused (values are stripped).
Text = Annotated[str, Field(min_length=1, pattern=HAS_TEXT)]
Fen = Annotated[int, Field(ge=0, le=10**12, description="amount in fen (分), 1 yuan = 100 fen")]
BidFen = Annotated[int, Field(ge=1, le=MAX_BID_FEN, description="cost-per-click bid in fen (分)")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


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
EventType = Annotated[str, Field(pattern=EVENT_PATTERN, examples=["order"],
                                 description="conversion event type: lower-case letters, digits, _ "
                                             "(order, lead, conversation_started …)")]
CpaBidFen = Annotated[int, Field(ge=1, le=MAX_CPA_FEN, description="bid per conversion in fen (分)")]


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


# ---- matching -----------------------------------------------------------------------------------
def _text_or_html(schema: dict[str, Any]) -> None:
    """The model check below, stated in the OpenAPI document: text or html with some content."""
    schema["anyOf"] = [{"required": [name], "properties": {name: {"type": "string", "pattern": HAS_TEXT}}}
                       for name in ("text", "html")]
    schema["description"] = ("the page: text or html (or both) with some content; text and html together "
                             "at most ADMATCH_MAX_PAGE_BYTES bytes of UTF-8 (default 200,000; over it: 413)")


class PageIn(Strict):
    model_config = ConfigDict(json_schema_extra=_text_or_html)

    url: HttpUrl | None = Field(default=None, examples=["https://news.example.com/a/1"])
    title: str | None = Field(default=None, max_length=500, examples=["3G手机资费新政"])
    text: str | None = Field(default=None, examples=["运营商推出3G手机套餐，长话、市话、漫游一个价。"])
    html: str | None = Field(default=None, description="the page's HTML, instead of or besides text")

    @model_validator(mode="after")
    def _has_content(self) -> PageIn:
        if not (self.text and self.text.strip()) and not (self.html and self.html.strip()):
            raise ValueError("page needs text or html with some content; send the article's text")
        return self


class MatchRequest(Strict):
    publisher_id: Text = Field(max_length=64, examples=["demo-news"])
    page: PageIn
    slots: int = Field(default=3, ge=1, le=10, description="ad slots on the page (1-10)")
    user_key: str | None = Field(
        default=None, max_length=128,
        description="an opaque id of the reader for frequency caps, e.g. a hashed cookie id; phone "
                    "numbers, national ID numbers and e-mail addresses are refused (422)")

    @field_validator("user_key")
    @classmethod
    def _opaque_user_key(cls, v: str | None) -> str | None:
        kind = personal_data_kind(v) if v else None
        if kind:
            raise ValueError(f"looks like {kind}: send an opaque id instead (e.g. a salted hash of your "
                             "cookie id), never personal data")
        return v


class PageCategory(BaseModel):
    id: str = Field(description="IAB Content Taxonomy 3.1 unique id")
    name: str
    name_zh: str
    score: float
    sensitive: bool


class MatchedKeyword(BaseModel):
    keyword: str
    match_type: str = Field(description="exact (精确), phrase (短语) or broad (广泛)")


class Explanation(BaseModel):
    matched: list[MatchedKeyword]
    signals: dict[str, float] = Field(description="each relevance signal's score in [0, 1]")
    quality: float = Field(description="the auction's quality term: the predicted click-through at the top "
                                       "slot (a Thompson draw when the auction explored), or the relevance "
                                       "score when ADMATCH_CTR_ENABLED is false")
    bid_fen: int = Field(description="the bid that entered the auction (per conversion for a CPA ad)")
    predicted_ctr: float | None = Field(default=None, description="predicted click-through at this ad's slot")
    explored: bool = Field(default=False, description="this auction ranked by draws from the model (exploration)")
    predicted_cvr: float | None = Field(default=None, description="a CPA ad's predicted conversions per click "
                                        "(its eCPM is bid_fen × quality × predicted_cvr); null for a CPC ad")


class MatchedAd(BaseModel):
    ad_id: str
    campaign_id: str
    title: str
    description: str
    landing_url: str
    score: float
    matched_keywords: list[str]
    impression_id: str
    price_fen: int = Field(description="what a valid click on this ad costs (GSP price); per conversion "
                                       "of conversion_event when pays_per is conversion")
    click_url: str = Field(description="send the reader here on click; it redirects to landing_url")
    adomain: str = Field(default="", description="the advertiser's domain (landing URL host, without www.)")
    view_url: str | None = Field(default=None, description="POST here (empty body) once the ad has been at "
                                 "least 50 % in view for 1 s: a viewable impression, counted once")
    explanation: Explanation | None = None
    house_ad: bool = False
    pays_per: str = Field(default="click", description="click, or conversion (a CPA campaign: clicks are free)")
    conversion_event: str | None = Field(default=None, description="the event a CPA ad pays for")


class MatchResponse(BaseModel):
    request_id: str
    publisher_id: str
    index_version: str | None
    page_categories: list[PageCategory] = Field(default_factory=list)
    page_analysed: bool = Field(
        default=False,
        description="ranked with the page's sentence-encoder vector (false: the first view, lexical "
                    "signals only; the page is analysed in the background and later requests use it)")
    ads: list[MatchedAd]
    debug: dict[str, Any] | None = Field(default=None, description="with ?explain=1 only")


class AnalysisBacklog(BaseModel):
    length: int = Field(description="pages in the analysis queue: waiting, or being analysed")
    pending: int = Field(description="pages a worker has read and not finished")
    consumers: int = Field(description="analyzer workers seen in the last 30 s")


class IndexStatus(BaseModel):
    loaded: bool
    version: str | None
    ad_count: int
    built_at: str | None
    dense_dim: int | None = None
    faiss_index: str | None = None
    live_changes: int = Field(default=0, description="ads created, changed or removed since this "
                              "version was built, served from the change log until the next build")
    change_log_position: str | None = None
    analysis: AnalysisBacklog | None = Field(
        default=None, description="the page-analysis queue (null: analysis disabled or Redis not answering)")


# ---- reports ------------------------------------------------------------------------------------
class ReportRow(BaseModel):
    period: str = Field(description="YYYY-MM-DD by day, YYYY-MM-DDTHH:00 by hour, or total")
    impressions: int
    viewable_impressions: int = Field(description="impressions the ad tag saw at least 50 % in view for 1 s")
    viewability: float = Field(description="viewable_impressions / impressions")
    clicks: int = Field(description="valid (charged) clicks")
    invalid_clicks: dict[str, int] = Field(description="invalid clicks by reason (duplicate, bot, expired …)")
    invalid_total: int
    ctr: float = Field(description="clicks / impressions")
    spend_fen: int = Field(description="clicks and CPA conversions charged, fen")
    avg_cpc_fen: float
    conversions: int = Field(default=0, description="conversions counted, in the hour they arrived")
    conversion_rate: float = Field(default=0.0, description="conversions / clicks")
    conversion_value_fen: int = Field(default=0, description="what the counted conversions are worth to the "
                                      "advertiser (the value_fen sent), fen")
    cost_per_conversion_fen: float = Field(default=0.0, description="spend_fen / conversions")
    roi: float = Field(default=0.0, description="conversion_value_fen / spend_fen")


class BreakdownRow(ReportRow):
    key: str | None = Field(default=None, description="the ad id, matched keyword or page category id "
                            "(absent on the totals)")
    name: str | None = Field(default=None, description="a page category's Chinese name ('' unknown)")


class PublisherReportRow(ReportRow):
    earnings_fen: int = Field(description="the publisher's share of spend, floored to whole fen")
    requested_slots: int = Field(default=0, description="ad slots the publisher's /v1/match and ad-tag "
                                                        "requests asked for")
    fill_rate: float = Field(default=0.0, description="impressions / requested_slots (0 when none were asked for)")


class Report(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    start: str = Field(alias="from", description="first day, YYYY-MM-DD")
    end: str = Field(alias="to", description="last day, YYYY-MM-DD")
    granularity: Literal["hour", "day"]
    timezone: str = Field(description="the billing timezone the days and hours are in")


class ChainHead(BaseModel):
    head: str = Field(description="SHA-256 of the day's last ledger entry")
    seq: int = Field(description="that entry's sequence number in the campaign's chain")
    entries: int = Field(description="ledger entries that billing day")


class CampaignReport(Report):
    campaign_id: str
    rows: list[ReportRow]
    totals: ReportRow
    chain: dict[str, ChainHead] = Field(default_factory=dict, description="ledger chain head by billing day")


class BreakdownReport(Report):
    campaign_id: str
    by: Literal["ad", "keyword", "category"]
    granularity: Literal["total", "day"]  # type: ignore[assignment]  # one row per key, or per key and day
    rows: list[BreakdownRow] = Field(description="most spend first, then most impressions, then key")
    totals: BreakdownRow


class PublisherReport(Report):
    publisher_id: str
    revenue_share: float
    rows: list[PublisherReportRow]
    totals: PublisherReportRow


# ---- ops ----------------------------------------------------------------------------------------
class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "degraded", "not_ready"] = Field(
        description="ready; degraded (200) while Redis is unavailable; not_ready (503) until an index is loaded")
    index_loaded: bool
    redis: bool = Field(description="Redis answered a PING")
    redis_circuit: Literal["closed", "open", "half_open"] | None = Field(
        default=None, description="the Redis circuit breaker's state")
    spooled_clicks: int | None = Field(default=None, ge=0,
                                       description="clicks redirected while Redis was away, not yet decided")
    index_error: str | None = Field(default=None, description="why the newest index version did not load")


class CategoryOut(BaseModel):
    id: str = Field(description="IAB Content Taxonomy 3.1 unique id")
    name: str
    name_zh: str
    tier: int
    parent: str | None
    sensitive: bool = Field(description="pages in it get only ads with allow_sensitive")


# ---- errors -------------------------------------------------------------------------------------
class FieldError(BaseModel):
    field: str = Field(description="the field, dotted for nested ones (page.text), or body")
    message: str


class RowError(BaseModel):
    line: int = Field(description="line number in the CSV file, the header being line 1")
    errors: list[str]


class ErrorOut(BaseModel):
    """Every error but a 422: a stable code and a message saying what to change."""

    error: str = Field(description="stable code, e.g. unauthorized, forbidden, not_found")
    detail: str = Field(description="what is wrong and what to change")
    fields: list[FieldError] | None = Field(default=None, description="the fields concerned, when there are")


class ValidationErrorOut(BaseModel):
    """A 422: the request is well-formed HTTP but its content is not acceptable."""

    error: Literal["invalid_request"]
    detail: str = Field(description="every problem, each as 'field: what to change', joined by '; '")
    fields: list[FieldError] = Field(description="each problem's field and message")
    rows: list[RowError] | None = Field(default=None, description="CSV uploads: every bad line")


# ---- conversions --------------------------------------------------------------------------------
class ConversionIn(Strict):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"examples": [{
        "click": "9f0c2e6a4b1d4f7e8a3c5b2d1e0f9a8b.cmp_3f2a1b4c5d6e", "event": "order", "value_fen": 129900,
        "order_id": "SO-20250301-0042"}]})

    click: str = Field(min_length=1, max_length=200,
                       description="the admatch_click parameter the landing URL was opened with")
    event: EventType
    value_fen: Fen = Field(default=0, description="what the conversion is worth to you, in fen (for ROI)")
    order_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$",
                                 description="your order or lead id, printable ASCII: a conversion is "
                                             "counted (and charged) once per order id")


class ConversionOut(BaseModel):
    counted: bool = Field(description="counted in reports (and charged, for a CPA ad)")
    reason: str = Field(description="counted, or why not: duplicate_order, invalid_click, outside_window")
    detail: str
    charged_fen: int = Field(description="charged for this conversion (CPA ads only)")
    billing: str = Field(description="cpc (the click was paid), charged, budget_exhausted (counted, "
                                     "not charged), other_event (a CPA ad bought for another event), or ''")
    campaign_id: str | None = None
    ad_id: str | None = None
