"""An advertiser's campaigns and ads: list, create, edit budgets and pacing, pause, resume, delete;
ads with their keywords (match types), bids and negatives."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from service.console import forms
from service.console.api import Api, ApiError
from service.console.session import Session
from service.console.web import form_of, redirect, render, role

router = APIRouter(prefix="/console", include_in_schema=False)
Advertiser = Annotated[Session, Depends(role("advertiser"))]


def _campaign_body(form: Any, *, creating: bool) -> dict[str, Any]:
    body = {
        "name": forms.text(form, "name") or None,
        "daily_budget_fen": forms.yuan_to_fen(form, "daily_budget"),
        "total_budget_fen": forms.yuan_to_fen(form, "total_budget"),
        "pacing": forms.text(form, "pacing") or None,
        "frequency_cap": forms.integer(form, "frequency_cap"),
    }
    if creating:
        return forms.drop_none(body)
    # an emptied budget field is "no limit" on edit too, so it is sent as null, not left out
    return {k: v for k, v in body.items() if v is not None or k in ("daily_budget_fen", "total_budget_fen")}


def _ad_body(form: Any) -> dict[str, Any]:
    bid = forms.yuan_to_fen(form, "bid")
    return forms.drop_none({
        "title": forms.text(form, "title") or None,
        "description": forms.text(form, "description"),
        "landing_url": forms.text(form, "landing_url") or None,
        "keywords": forms.lines(form, "keywords"),
        "negative_keywords": forms.lines(form, "negative_keywords"),
        "bid_fen": bid,
    })


async def _campaigns_page(request: Request, s: Session, status_code: int = 200, **extra: Any) -> HTMLResponse:
    async with Api(request, s.api_key) as api:
        campaigns = await api.get("/v1/campaigns")
        # each campaign's last 7 days (the report API's default range), in one call
        week = await api.get(f"/v1/reports/advertisers/{s.principal_id}")
    totals = {row["key"]: row for row in week["rows"]}
    return render(request, "campaigns.html", s, status_code, campaigns=campaigns, totals=totals, **extra)


@router.get("/campaigns", response_class=HTMLResponse)
async def campaigns(request: Request, s: Advertiser) -> HTMLResponse:
    return await _campaigns_page(request, s)


@router.post("/campaigns", response_model=None)
async def create_campaign(request: Request, s: Advertiser) -> HTMLResponse | RedirectResponse:
    form = await form_of(request, s)
    try:
        body = _campaign_body(form, creating=True)
        async with Api(request, s.api_key) as api:
            created = await api.post("/v1/campaigns", body)
    except (forms.FieldError, ApiError) as e:
        message, fields = forms.form_error(e)
        return await _campaigns_page(request, s, 422, error=message, error_fields=fields, form=form)
    return redirect(f"/console/campaigns/{created['id']}")


async def _campaign_page(request: Request, s: Session, campaign_id: str, status_code: int = 200,
                         **extra: Any) -> HTMLResponse:
    async with Api(request, s.api_key) as api:
        campaign = await api.get(f"/v1/campaigns/{campaign_id}")
        ads = await api.get(f"/v1/campaigns/{campaign_id}/ads")
    return render(request, "campaign.html", s, status_code, campaign=campaign, ads=ads, **extra)


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
async def campaign(request: Request, campaign_id: str, s: Advertiser) -> HTMLResponse:
    return await _campaign_page(request, s, campaign_id)


@router.post("/campaigns/{campaign_id}", response_model=None)
async def edit_campaign(request: Request, campaign_id: str, s: Advertiser) -> HTMLResponse | RedirectResponse:
    form = await form_of(request, s)
    try:
        body = _campaign_body(form, creating=False)
        async with Api(request, s.api_key) as api:
            await api.patch(f"/v1/campaigns/{campaign_id}", body)
    except (forms.FieldError, ApiError) as e:
        message, fields = forms.form_error(e)
        return await _campaign_page(request, s, campaign_id, 422, error=message, error_fields=fields)
    return redirect(f"/console/campaigns/{campaign_id}?saved=1")


@router.post("/campaigns/{campaign_id}/{action}")
async def campaign_action(request: Request, campaign_id: str, action: Literal["pause", "resume", "delete"],
                          s: Advertiser) -> RedirectResponse:
    await form_of(request, s)
    async with Api(request, s.api_key) as api:
        if action == "delete":
            await api.delete(f"/v1/campaigns/{campaign_id}")
            return redirect("/console/campaigns")
        await api.post(f"/v1/campaigns/{campaign_id}/{action}")
    return redirect(f"/console/campaigns/{campaign_id}")


@router.post("/campaigns/{campaign_id}/ads/new", response_model=None)
async def create_ad(request: Request, campaign_id: str, s: Advertiser) -> HTMLResponse | RedirectResponse:
    form = await form_of(request, s)
    try:
        body = _ad_body(form)
        async with Api(request, s.api_key) as api:
            await api.post(f"/v1/campaigns/{campaign_id}/ads", body)
    except (forms.FieldError, ApiError) as e:
        message, fields = forms.form_error(e)
        return await _campaign_page(request, s, campaign_id, 422, ad_error=message, error_fields=fields,
                                    ad_form=form)
    return redirect(f"/console/campaigns/{campaign_id}")


async def _ad_page(request: Request, s: Session, ad_id: str, status_code: int = 200, **extra: Any) -> HTMLResponse:
    async with Api(request, s.api_key) as api:
        ad = await api.get(f"/v1/ads/{ad_id}")
    return render(request, "ad.html", s, status_code, ad=ad, **extra)


@router.get("/ads/{ad_id}", response_class=HTMLResponse)
async def ad(request: Request, ad_id: str, s: Advertiser) -> HTMLResponse:
    return await _ad_page(request, s, ad_id)


@router.post("/ads/{ad_id}", response_model=None)
async def edit_ad(request: Request, ad_id: str, s: Advertiser) -> HTMLResponse | RedirectResponse:
    form = await form_of(request, s)
    try:
        body = _ad_body(form)
        if forms.text(form, "status"):
            body["status"] = forms.text(form, "status")
        async with Api(request, s.api_key) as api:
            await api.patch(f"/v1/ads/{ad_id}", body)
    except (forms.FieldError, ApiError) as e:
        message, fields = forms.form_error(e)
        return await _ad_page(request, s, ad_id, 422, error=message, error_fields=fields)
    return redirect(f"/console/ads/{ad_id}?saved=1")


@router.post("/ads/{ad_id}/delete")
async def delete_ad(request: Request, ad_id: str, s: Advertiser) -> RedirectResponse:
    await form_of(request, s)
    async with Api(request, s.api_key) as api:
        campaign_id = (await api.get(f"/v1/ads/{ad_id}"))["campaign_id"]
        await api.delete(f"/v1/ads/{ad_id}")
    return redirect(f"/console/campaigns/{campaign_id}")
