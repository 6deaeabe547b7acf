"""Wire schemas of the ad tag, site tokens and publisher brand controls (schemas.py and its siblings hold the rest)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from matching.brand import normalise_domain
from matching.origins import normalise_origin
from matching.user_keys import personal_data_kind
from service.api.schemas import CategoryId, Strict

MAX_TAG_TEXT_CHARS = 20_000  # the tag sends at most this much of the article


def _origin(value: str) -> str:
    return normalise_origin(value)


def _domain(value: str) -> str:
    d = normalise_domain(value)
    if "." not in d or len(d) > 253 or any(not part for part in d.split(".")):
        raise ValueError(f"{value!r} is not a domain; write it as example.com (subdomains are blocked too)")
    return d


Origin = Annotated[str, Field(max_length=300), AfterValidator(_origin)]
Domain = Annotated[str, Field(min_length=1, max_length=300), AfterValidator(_domain)]
AdvertiserId = Annotated[str, Field(min_length=1, max_length=64)]


# ---- publisher brand controls ---------------------------------------------------------------
class ControlsPatch(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "blocked_categories": ["680"], "blocked_domains": ["example.net"], "ad_label": "廣告"}]})

    blocked_categories: list[CategoryId] | None = Field(
        default=None, max_length=200, description="IAB ids (GET /v1/categories): ads in them or their children never show")
    blocked_advertisers: list[AdvertiserId] | None = Field(default=None, max_length=1000,
                                                           description="advertiser ids whose ads never show")
    blocked_domains: list[Domain] | None = Field(
        default=None, max_length=1000, description="advertiser domains (landing URL hosts); subdomains are blocked too")
    ad_label: str | None = Field(default=None, min_length=1, max_length=12,
                                 description="the label the tag shows on every ad (default 广告)")


class Controls(BaseModel):
    publisher_id: str
    floor_fen: int
    blocked_categories: list[str]
    blocked_advertisers: list[str]
    blocked_domains: list[str]
    ad_label: str


# ---- site tokens ----------------------------------------------------------------------------
class SiteIn(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "新闻早知道", "origins": ["https://news.example.com", "https://m.news.example.com"]}]})

    name: str = Field(min_length=1, max_length=100)
    origins: list[Origin] = Field(min_length=1, max_length=50,
                                  description="page origins (scheme://host[:port]) the tag may serve ads on")


class SitePatch(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"origins": ["https://news.example.com"]}]})

    name: str | None = Field(default=None, min_length=1, max_length=100)
    origins: list[Origin] | None = Field(default=None, min_length=1, max_length=50)


class SiteOut(BaseModel):
    token: str = Field(description="public: put it in the tag's data-site; it is not an API key")
    name: str
    origins: list[str]
    snippet: str = Field(description="the HTML to add to the site's pages")


# ---- the tag's requests -----------------------------------------------------------------------
class TagPage(Strict):
    url: str | None = Field(default=None, max_length=2048)
    title: str | None = Field(default=None, max_length=500)
    text: str = Field(min_length=1, max_length=MAX_TAG_TEXT_CHARS)


class TagMatchRequest(Strict):
    site: str = Field(min_length=1, max_length=64, description="the site token (data-site)")
    page: TagPage
    slots: int = Field(default=3, ge=1, le=10)
    user_key: str | None = Field(default=None, max_length=128)

    @field_validator("user_key")
    @classmethod
    def _opaque_user_key(cls, v: str | None) -> str | None:
        kind = personal_data_kind(v) if v else None
        if kind:
            raise ValueError(f"looks like {kind}: pass an opaque id in data-user-key, never personal data")
        return v


class TagAd(BaseModel):
    title: str
    description: str
    domain: str = Field(description="the advertiser's domain, shown under the ad")
    click_url: str
    view_url: str | None = Field(description="POST here once the ad has been ≥ 50 % in view for 1 s")


class TagMatchResponse(BaseModel):
    label: str = Field(description="shown on every ad (广告 unless the publisher set another)")
    ads: list[TagAd]
