"""Wire schemas: what clients send and receive. Limits here reject bad input with a 422 before
any of our code runs; the domain uses the frozen dataclasses of matching.types and records.
This module holds the shared field types and the matching, ops, error and conversion models;
catalog_schemas.py, report_schemas.py, console_schemas.py and tag_schemas.py hold the rest."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

from matching.categories import load_taxonomy
from matching.conversions import EVENT_PATTERN
from matching.user_keys import personal_data_kind


def _category(value: str) -> str:
    if value not in load_taxonomy():
        raise ValueError(f"{value!r} is not an IAB Content Taxonomy 3.1 id admatch knows; "
                         "see GET /v1/categories for the ids")
    return value


# The limits the validator above enforces, stated in the OpenAPI document; the validator keeps
# its own message (what to change), which pydantic's built-in constraints would replace.
HAS_TEXT = r"\S"  # some character that is not white space (values are stripped first)
CategoryId = Annotated[str, AfterValidator(_category), Field(json_schema_extra=lambda s: s.update(
    enum=[c.id for c in load_taxonomy()], description="an IAB Content Taxonomy 3.1 id from GET /v1/categories"))]
# A required name or title: white space alone is refused (values are stripped).
Text = Annotated[str, Field(min_length=1, pattern=HAS_TEXT)]
Fen = Annotated[int, Field(ge=0, le=10**12, description="amount in fen (分), 1 yuan = 100 fen")]
# A conversion event's name: what a CPA campaign pays for and what a conversion reports.
EventType = Annotated[str, Field(pattern=EVENT_PATTERN, examples=["order"],
                                 description="conversion event type: lower-case letters, digits, _ "
                                             "(order, lead, conversation_started …)")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


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
