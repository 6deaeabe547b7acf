"""Admin endpoints: create advertisers and publishers, each with its own API key; creative review
(the ads flagged under the Advertising Law: list, approve, reject)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, status

from service.api.catalog_schemas import (
    AdOut,
    AdvertiserIn,
    AdvertiserOut,
    ApproveIn,
    PublisherIn,
    PublisherOut,
    PublisherPatch,
    PublisherView,
    RejectIn,
)
from service.api.console_schemas import AdvertiserSummary, PublisherSummary
from service.api.responses import errors
from service.api.routes import ctx
from service.api.routes.ads import out
from service.auth import Admin
from service.review.creative_review import ReviewQueue
from service.store import directory

router = APIRouter(prefix="/v1", tags=["admin"], responses=errors(401, 403, 422))


@router.post("/advertisers", status_code=status.HTTP_201_CREATED, response_model=AdvertiserOut,
             summary="Create an advertiser and its API key (admin)")
async def create_advertiser(body: AdvertiserIn, request: Request, _: Admin) -> AdvertiserOut:
    adv, key = await ctx(request).catalog.create_advertiser(body.name)
    return AdvertiserOut(id=adv.id, name=adv.name, api_key=key)


@router.post("/publishers", status_code=status.HTTP_201_CREATED, response_model=PublisherOut,
             summary="Create a publisher and its API key (admin)")
async def create_publisher(body: PublisherIn, request: Request, _: Admin) -> PublisherOut:
    fallback = body.fallback_ad.model_dump(mode="json") if body.fallback_ad else None
    pub, key = await ctx(request).catalog.create_publisher(body.name, body.floor_fen, fallback_ad=fallback)
    return PublisherOut(id=pub.id, name=pub.name, floor_fen=pub.floor_fen, api_key=key)


@router.get("/advertisers", summary="Every advertiser with its campaign count, by id (admin; never the keys)")
async def list_advertisers(request: Request, _: Admin) -> list[AdvertiserSummary]:
    return [AdvertiserSummary(id=e.advertiser.id, name=e.advertiser.name, created_at=e.advertiser.created_at,
                              campaigns=e.campaigns) for e in await directory.advertisers(ctx(request).redis)]


@router.get("/publishers", summary="Every publisher with its floor and site count, by id (admin; never the keys)")
async def list_publishers(request: Request, _: Admin) -> list[PublisherSummary]:
    return [PublisherSummary(id=e.publisher.id, name=e.publisher.name, created_at=e.publisher.created_at,
                             floor_fen=e.publisher.floor_fen, sites=e.sites)
            for e in await directory.publishers(ctx(request).redis)]


@router.patch("/publishers/{publisher_id}", response_model=PublisherView,
              summary="Change a publisher's name, floor price or house ad (admin)", responses=errors(404))
async def update_publisher(publisher_id: str, body: PublisherPatch, request: Request, _: Admin) -> PublisherView:
    changes = body.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    pub = await ctx(request).catalog.update_publisher(publisher_id, changes)
    return PublisherView(id=pub.id, name=pub.name, floor_fen=pub.floor_fen, fallback_ad=pub.fallback_ad)


@router.get("/review/ads", tags=["admin: creative review"],
            summary="Ads waiting for creative review (广告法), oldest change first (admin)")
async def pending_reviews(request: Request, _: Admin,
                          limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[AdOut]:
    return [out(a) for a in await ReviewQueue(ctx(request).catalog).pending(limit)]


@router.post("/review/ads/{ad_id}/approve", tags=["admin: creative review"],
             summary="Approve a flagged ad: it serves within about a second (admin)", responses=errors(404, 409))
async def approve_ad(ad_id: str, request: Request, _: Admin,
                     body: Annotated[ApproveIn | None, Body(examples=[{"note": "已核验医疗广告审查证明"}])] = None
                     ) -> AdOut:
    body = body or ApproveIn()
    queue = ReviewQueue(ctx(request).catalog)
    return out(await queue.decide(ad_id, approve=True, note=body.note, updated_at=body.updated_at))


@router.post("/review/ads/{ad_id}/reject", tags=["admin: creative review"],
             summary="Reject a flagged ad with a reason the advertiser sees; it does not serve (admin)",
             responses=errors(404, 409))
async def reject_ad(ad_id: str, body: RejectIn, request: Request, _: Admin) -> AdOut:
    queue = ReviewQueue(ctx(request).catalog)
    return out(await queue.decide(ad_id, approve=False, note=body.reason, updated_at=body.updated_at))
