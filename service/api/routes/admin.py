"""Admin endpoints: create advertisers and publishers, each with its own API key."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from service.api.responses import errors
from service.api.routes import ctx
from service.api.schemas import (
    AdvertiserIn,
    AdvertiserOut,
    PublisherIn,
    PublisherOut,
    PublisherPatch,
    PublisherView,
)
from service.auth import Admin

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


@router.patch("/publishers/{publisher_id}", response_model=PublisherView,
              summary="Change a publisher's name, floor price or house ad (admin)", responses=errors(404))
async def update_publisher(publisher_id: str, body: PublisherPatch, request: Request, _: Admin) -> PublisherView:
    changes = body.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    pub = await ctx(request).catalog.update_publisher(publisher_id, changes)
    return PublisherView(id=pub.id, name=pub.name, floor_fen=pub.floor_fen, fallback_ad=pub.fallback_ad)
