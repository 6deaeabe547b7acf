"""The publisher endpoint: the best ads for a page, priced by auction, with encrypted click URLs."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Annotated, Any

from cachetools import LRUCache
from fastapi import APIRouter, Query, Request, Response

from matching.brand import ad_domain
from matching.types import Signals
from service import metrics
from service.api.responses import errors
from service.api.routes import ctx
from service.api.schemas import (
    Explanation,
    MatchedAd,
    MatchedKeyword,
    MatchRequest,
    MatchResponse,
    PageCategory,
)
from service.auth import PublisherP
from service.errors import Forbidden
from service.serving.page_cache import PageResult
from service.serving.page_match import PageIn, match_page
from service.serving.placement import Placement

router = APIRouter(prefix="/v1", tags=["publisher"])

EXAMPLE = {
    "publisher_id": "demo-news",
    "page": {"title": "3G手机资费新政", "text": "运营商推出3G手机套餐，长话、市话、漫游一个价，流量更多。"},
    "slots": 3,
}


# Click URL bases by what Request.base_url is built from; bounded, as Host is the client's to choose.
_BASES: LRUCache[tuple[Any, ...], str] = LRUCache(maxsize=256)
_SIGNALS = tuple(f.name for f in dataclasses.fields(Signals))  # asdict deep-copies: slower per ad


def click_base(request: Request) -> str:
    configured = ctx(request).settings.public_base_url
    if configured:
        return configured.rstrip("/") + "/v1/click/"
    scope = request.scope
    server = scope.get("server")
    key = (scope.get("scheme"), tuple(server) if server else None, scope.get("root_path"), request.headers.get("host"))
    base = _BASES.get(key)
    if base is None:
        base = _BASES[key] = str(request.base_url).rstrip("/") + "/v1/click/"
    return base


def signals_out(s: Signals) -> dict[str, float]:
    return {name: round(getattr(s, name), 4) for name in _SIGNALS}


@router.post("/match", summary="The best ads for a page (empty when nothing is relevant enough)",
             response_model=MatchResponse, responses=errors(401, 403, 413, 422, 503),
             openapi_extra={"requestBody": {"content": {"application/json": {"example": EXAMPLE}}}})
async def match(body: MatchRequest, request: Request, p: PublisherP,
                explain: Annotated[bool, Query(description="add a debug view of every candidate")] = False,
                ) -> Response:
    with metrics.MATCH_SECONDS.time():
        out = await _match(body, request, p, explain)
        # built here from validated parts: returned as JSON as it is, not validated again by FastAPI
        return Response(out.model_dump_json(), media_type="application/json")


def _explanation(x: Placement) -> Explanation:
    c = x.candidate
    return Explanation(
        matched=[MatchedKeyword(keyword=k, match_type=t) for k, t in
                 zip(c.matched_keywords, c.match_types or ("broad",) * len(c.matched_keywords), strict=True)],
        signals=signals_out(c.signals),
        quality=round(x.win.bid.quality, 6), bid_fen=x.win.bid.bid_fen,
        predicted_ctr=None if x.pctr is None else round(x.pctr, 6), explored=x.explored,
        predicted_cvr=round(x.win.bid.cvr, 6) if x.win.bid.per_conversion else None)


def _debug(result: PageResult, placements: list[Placement]) -> dict[str, Any]:
    won = {x.candidate.ad.id: x.win for x in placements}
    return {"candidates": [{
        "ad_id": c.ad.id, "campaign_id": c.ad.campaign_id, "score": round(c.score, 4),
        "signals": signals_out(c.signals),
        "matched_keywords": list(c.matched_keywords), "match_types": list(c.match_types),
        "outcome": (f"won slot {won[c.ad.id].slot + 1} at {won[c.ad.id].price_fen} fen" if c.ad.id in won
                    else "lost: budget, pacing, frequency cap or auction")} for c in result.candidates]}


async def _match(body: MatchRequest, request: Request, p: PublisherP, explain: bool) -> MatchResponse:
    c = ctx(request)
    if body.publisher_id != p.id:
        raise Forbidden(f"publisher_id {body.publisher_id!r} is not yours; send your own id ({p.id!r})")
    publisher = await c.catalog.serving_publisher(p.id)
    pg = body.page
    m = await match_page(c, publisher, PageIn(title=pg.title, text=pg.text, html=pg.html,
                                              url=str(pg.url) if pg.url else None), body.slots, body.user_key)
    placements, result, snap = m.placements, m.result, m.snapshot
    base = click_base(request)
    views = base.removesuffix("click/") + "view/"
    ads = [MatchedAd(ad_id=x.candidate.ad.id, campaign_id=x.candidate.ad.campaign_id,
                     title=x.candidate.ad.title, description=x.candidate.ad.description,
                     landing_url=x.candidate.ad.landing_url, score=round(x.candidate.score, 4),
                     matched_keywords=list(x.candidate.matched_keywords), impression_id=x.impression_id,
                     price_fen=x.win.price_fen, click_url=base + x.token,
                     adomain=ad_domain(x.candidate.ad.landing_url), view_url=views + x.token,
                     explanation=_explanation(x),
                     pays_per="conversion" if x.cpa_event else "click", conversion_event=x.cpa_event)
           for x in placements]
    metrics.MATCH_ADS.inc(len(ads))
    if not ads:
        metrics.MATCH_EMPTY.inc()
    if not ads and publisher.fallback_ad:
        fb = publisher.fallback_ad
        ads = [MatchedAd(ad_id="house", campaign_id="house", title=fb["title"],
                         description=fb.get("description", ""), landing_url=fb["landing_url"], score=0.0,
                         matched_keywords=[], impression_id=uuid.uuid4().hex, price_fen=0,
                         click_url=fb["landing_url"], adomain=ad_domain(fb["landing_url"]), house_ad=True)]
    categories = [PageCategory(id=cat.id, name=cat.name, name_zh=cat.name_zh, score=round(score, 4),
                               sensitive=cat.sensitive) for cat, score in result.categories]
    return MatchResponse(request_id=uuid.uuid4().hex, publisher_id=p.id, index_version=snap.manifest.version,
                         page_categories=categories, page_analysed=result.analysed, ads=ads, debug=_debug(result, placements) if explain else None)
