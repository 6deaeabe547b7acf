"""The advertiser's preview: which of my ads a page would admit, and why (service.serving.preview)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.api.console_schemas import KeywordOut, PreviewAd, PreviewIn, PreviewOut
from service.api.responses import errors
from service.api.routes import ctx
from service.api.routes.match import signals_out
from service.api.schemas import PageCategory
from service.auth import AdvertiserP
from service.serving.page_match import PageIn
from service.serving.preview import preview

router = APIRouter(prefix="/v1", tags=["advertiser: preview"])


@router.post("/preview", summary="My ads a page would admit, with scores, matched keywords and signals "
                                 "(no auction, nothing counted or charged)",
             description="Send the page's text or HTML as /v1/match takes it, or only the URL of a page the "
                         "service has seen (a publisher's /v1/match or ad tag sent it): an unknown URL is a 404. "
                         "Ads below the relevance floor are listed too (`passed_floor` false): they are not shown.",
             responses=errors(401, 403, 404, 413, 422, 503))
async def preview_page(body: PreviewIn, request: Request, p: AdvertiserP) -> PreviewOut:
    pg = body.page
    res = await preview(ctx(request), p.id, PageIn(title=pg.title, text=pg.text, html=pg.html,
                                                   url=str(pg.url) if pg.url else None))
    ads = [PreviewAd(ad_id=x.ad.id, campaign_id=x.ad.campaign_id, title=x.ad.title, score=round(x.score, 4),
                     passed_floor=x.score >= res.floor, signals=signals_out(x.signals),
                     matched=[KeywordOut(keyword=k, match_type=t) for k, t in
                              zip(x.matched_keywords, x.match_types or ("broad",) * len(x.matched_keywords),
                                  strict=True)])
           for x in res.candidates]
    return PreviewOut(index_version=res.snapshot.manifest.version, floor=res.floor,
                      page_categories=[PageCategory(id=cat.id, name=cat.name, name_zh=cat.name_zh,
                                                    score=round(score, 4), sensitive=cat.sensitive)
                                       for cat, score in res.categories],
                      page_analysed=res.analysed, ads=ads)
