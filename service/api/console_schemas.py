"""Wire schemas of what the web console needs beyond the core API: who a key is, the admin's
lists, a CSV upload's dry run and an advertiser's preview of a page. The console holds no logic of
its own: everything it shows comes from these answers (schemas.py and its siblings hold the rest of the API's)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from service.api.catalog_schemas import ReviewReason
from service.api.schemas import HAS_TEXT, PageCategory, Strict
from service.store.records import ReviewStatus


# ---- who I am -----------------------------------------------------------------------------------
class MeOut(BaseModel):
    role: Literal["advertiser", "publisher", "admin", "exchange"]
    id: str = Field(description="the advertiser, publisher or exchange id ('admin' for the admin key)")
    name: str = Field(description="the name it was created with ('admin' for the admin key)")


# ---- admin lists --------------------------------------------------------------------------------
class AdvertiserSummary(BaseModel):
    id: str
    name: str
    created_at: str
    campaigns: int = Field(description="campaigns the advertiser has")


class PublisherSummary(BaseModel):
    id: str
    name: str
    created_at: str
    floor_fen: int = Field(description="lowest price per click the publisher accepts")
    sites: int = Field(description="sites (ad-tag tokens) the publisher has registered")


# ---- CSV dry run --------------------------------------------------------------------------------
class KeywordOut(BaseModel):
    keyword: str
    match_type: str = Field(description="exact (精确), phrase (短语) or broad (广泛)")


class CsvPreviewRow(BaseModel):
    line: int = Field(description="the row's line in the CSV file (the header is line 1)")
    title: str
    keywords: list[KeywordOut]
    bid_fen: int
    keyword_bids: dict[str, int]
    status: ReviewStatus = Field(description="the review status the row would be stored with: passed, or "
                                             "pending_review (not served until an admin approves it)")
    reasons: list[ReviewReason] = Field(description="what the automatic review (广告法) found")


class CsvPreview(BaseModel):
    dry_run: Literal[True] = True
    rows: list[CsvPreviewRow] = Field(description="every row of the file, in order; nothing was stored")
    would_create: int = Field(description="ads the upload would create")
    flagged: int = Field(description="rows the upload would store pending review")


# ---- advertiser preview -------------------------------------------------------------------------
def _content_or_url(schema: dict[str, Any]) -> None:
    """The model check below, stated in the OpenAPI document."""
    schema["anyOf"] = [{"required": [name], "properties": {name: {"type": "string", "pattern": HAS_TEXT}}}
                       for name in ("text", "html")] + [{"required": ["url"]}]
    schema["description"] = ("the page: text or html (or both) with some content, as /v1/match takes it; or "
                             "only the url of a page the service has seen (404 otherwise)")


class PreviewPage(Strict):
    model_config = ConfigDict(json_schema_extra=_content_or_url)

    url: HttpUrl | None = Field(default=None, examples=["https://news.example.com/a/1"])
    title: str | None = Field(default=None, max_length=500, examples=["楼市新政"])
    text: str | None = Field(default=None, examples=["本市新开楼盘首付两成，房贷利率下调"])
    html: str | None = Field(default=None, description="the page's HTML, instead of or besides text")

    @model_validator(mode="after")
    def _has_content(self) -> PreviewPage:
        if self.url is None and not (self.text and self.text.strip()) and not (self.html and self.html.strip()):
            raise ValueError("page needs text or html with some content, or the url of a page the "
                             "service has seen; paste the article's text")
        return self

    @property
    def has_content(self) -> bool:
        return bool((self.text and self.text.strip()) or (self.html and self.html.strip()))


class PreviewIn(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"page": {"title": "楼市新政", "text": "本市新开楼盘首付两成，房贷利率下调，公积金贷款更划算。"}}]})

    page: PreviewPage


class PreviewAd(BaseModel):
    ad_id: str
    campaign_id: str
    title: str
    score: float = Field(description="the relevance score the auction would see")
    passed_floor: bool = Field(description="at or above the relevance floor: the ad would enter the auction "
                                           "(budget, pacing and bids permitting); below it, it is not shown")
    matched: list[KeywordOut] = Field(description="its keywords found on the page, with their match types")
    signals: dict[str, float] = Field(description="each relevance signal's score in [0, 1]")


class PreviewOut(BaseModel):
    index_version: str | None
    floor: float = Field(description="the relevance floor: ads scoring below it are not shown")
    page_categories: list[PageCategory]
    page_analysed: bool = Field(description="ranked with the page's sentence-encoder vector (false: lexical "
                                            "signals only, as a page's first view is served)")
    ads: list[PreviewAd] = Field(description="your serving ads with any relevance to the page, best first "
                                             "(no auction is run, nothing is counted or charged)")
