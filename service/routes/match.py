"""The publisher endpoint: the best ads for a page."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from matching.analyze import make_page
from service.auth import PublisherP
from service.errors import Forbidden, NotReady, PayloadTooLarge
from service.routes import ctx
from service.schemas import MatchedAd, MatchRequest, MatchResponse

router = APIRouter(prefix="/v1", tags=["publisher"])

EXAMPLE = {
    "publisher_id": "demo-news",
    "page": {"title": "3G手机资费新政", "text": "运营商推出3G手机套餐，长话、市话、漫游一个价，流量更多。"},
    "slots": 3,
}


@router.post("/match", summary="The best ads for a page (empty when nothing is relevant enough)",
             openapi_extra={"requestBody": {"content": {"application/json": {"example": EXAMPLE}}}})
async def match(body: MatchRequest, request: Request, p: PublisherP) -> MatchResponse:
    c = ctx(request)
    if body.publisher_id != p.id:
        raise Forbidden(f"publisher_id {body.publisher_id!r} is not yours; send your own id ({p.id!r})")
    size = len((body.page.text or "").encode()) + len((body.page.html or "").encode())
    limit = c.settings.max_page_bytes
    if size > limit:
        raise PayloadTooLarge(f"page.text/page.html is {size} bytes, over the {limit}-byte limit; "
                              "send the article body only (no inline images or scripts)",
                              extra={"fields": [{"field": "page.text", "message": "too large"}]})
    snap = c.index.snapshot
    if snap is None:
        raise NotReady("no index is loaded yet; build one with 'admatch index build'")
    publisher = await c.catalog.get_publisher(p.id)
    page = make_page(title=body.page.title, text=body.page.text, html=body.page.html)
    terms = snap.matcher.analyze(page)
    blocked = c.blocked
    candidates = snap.matcher.rank(terms, body.slots,
                                   eligible=lambda ad: blocked.allows(ad.id, ad.campaign_id))
    ads = [MatchedAd(ad_id=x.ad.id, campaign_id=x.ad.campaign_id, title=x.ad.title,
                     description=x.ad.description, landing_url=x.ad.landing_url,
                     score=round(x.score, 4), matched_keywords=list(x.matched_keywords),
                     impression_id=uuid.uuid4().hex) for x in candidates]
    if not ads and publisher.fallback_ad:
        fb = publisher.fallback_ad
        ads = [MatchedAd(ad_id="house", campaign_id="house", title=fb["title"],
                         description=fb.get("description", ""), landing_url=fb["landing_url"], score=0.0,
                         matched_keywords=[], impression_id=uuid.uuid4().hex, house_ad=True)]
    return MatchResponse(request_id=uuid.uuid4().hex, publisher_id=p.id,
                         index_version=snap.manifest.version, ads=ads)
