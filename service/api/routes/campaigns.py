"""Advertiser endpoints for campaigns. Another advertiser's campaign is a 404."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from service.api.catalog_schemas import CampaignIn, CampaignOut, CampaignPatch
from service.api.responses import errors
from service.api.routes import ctx
from service.auth import AdvertiserP
from service.store.records import Campaign, Status

router = APIRouter(prefix="/v1/campaigns", tags=["advertiser: campaigns"], responses=errors(401, 403))


def out(c: Campaign) -> CampaignOut:
    return CampaignOut.model_validate(c, from_attributes=True)


@router.get("", summary="List my campaigns")
async def list_campaigns(request: Request, p: AdvertiserP) -> list[CampaignOut]:
    return [out(c) for c in await ctx(request).catalog.list_campaigns(p.id)]


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a campaign", responses=errors(422))
async def create_campaign(body: CampaignIn, request: Request, p: AdvertiserP) -> CampaignOut:
    c = await ctx(request).catalog.create_campaign(p.id, **body.model_dump())
    return out(c)


@router.get("/{campaign_id}", summary="One of my campaigns", responses=errors(404))
async def get_campaign(campaign_id: str, request: Request, p: AdvertiserP) -> CampaignOut:
    return out(await ctx(request).catalog.get_campaign(p.id, campaign_id))


@router.patch("/{campaign_id}", summary="Change a campaign (name, status, budgets)", responses=errors(404, 422))
async def update_campaign(campaign_id: str, body: CampaignPatch, request: Request,
                          p: AdvertiserP) -> CampaignOut:
    changes = body.model_dump(exclude_unset=True)
    # null clears a budget; cpa_event and cpa_bid_fen both null: back to paying per click
    changes = {k: v for k, v in changes.items() if v is not None or k.endswith("budget_fen") or k.startswith("cpa_")}
    return out(await ctx(request).catalog.update_campaign(p.id, campaign_id, changes))


@router.post("/{campaign_id}/pause", summary="Pause a campaign: its ads stop serving within a second",
             responses=errors(404))
async def pause_campaign(campaign_id: str, request: Request, p: AdvertiserP) -> CampaignOut:
    return out(await ctx(request).catalog.update_campaign(p.id, campaign_id, {"status": Status.PAUSED}))


@router.post("/{campaign_id}/resume", summary="Resume a paused campaign", responses=errors(404))
async def resume_campaign(campaign_id: str, request: Request, p: AdvertiserP) -> CampaignOut:
    return out(await ctx(request).catalog.update_campaign(p.id, campaign_id, {"status": Status.ACTIVE}))


@router.delete("/{campaign_id}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Delete a campaign and its ads", responses=errors(404))
async def delete_campaign(campaign_id: str, request: Request, p: AdvertiserP) -> Response:
    await ctx(request).catalog.delete_campaign(p.id, campaign_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
