"""The reviewer's and admin's pages: the 广告法 review queue (approve, reject with a reason),
advertisers and publishers, the index, the page-analysis backlog and the service's health."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from service.console import forms
from service.console.api import Api, ApiError
from service.console.session import Session
from service.console.web import form_of, redirect, render, role

router = APIRouter(prefix="/console", include_in_schema=False)
Admin = Annotated[Session, Depends(role("admin"))]


async def _review_page(request: Request, s: Session, status_code: int = 200, **extra: Any) -> HTMLResponse:
    async with Api(request, s.api_key) as api:
        pending = await api.get("/v1/review/ads")
    return render(request, "review.html", s, status_code, pending=pending, **extra)


@router.get("/review", response_class=HTMLResponse)
async def review(request: Request, s: Admin) -> HTMLResponse:
    return await _review_page(request, s)


@router.post("/review/{ad_id}", response_model=None)
async def decide(request: Request, ad_id: str, s: Admin) -> HTMLResponse | RedirectResponse:
    form = await form_of(request, s)
    approve = form.get("decision") == "approve"
    body: dict[str, Any] = {"updated_at": forms.text(form, "updated_at") or None}
    if approve:
        body["note"] = forms.text(form, "note") or None
    else:
        body["reason"] = forms.text(form, "reason")
    try:
        async with Api(request, s.api_key) as api:
            await api.post(f"/v1/review/ads/{ad_id}/{'approve' if approve else 'reject'}", forms.drop_none(body))
    except ApiError as e:
        if e.status not in (409, 422):
            raise
        return await _review_page(request, s, e.status, error=e.detail, error_ad=ad_id)
    return redirect("/console/review?done=" + ad_id)


async def _admin_page(request: Request, s: Session, status_code: int = 200, **extra: Any) -> HTMLResponse:
    async with Api(request, s.api_key) as api:
        advertisers = await api.get("/v1/advertisers")
        publishers = await api.get("/v1/publishers")
        index = await api.get("/v1/index/status")
        r = await api.answer("/readyz")  # 503 while no index is loaded: shown, not raised
    return render(request, "admin.html", s, status_code, advertisers=advertisers, publishers=publishers,
                  index=index, health=r.json(), **extra)


@router.get("/admin", response_class=HTMLResponse)
async def admin(request: Request, s: Admin) -> HTMLResponse:
    return await _admin_page(request, s)


@router.post("/admin/{kind}", response_model=None)
async def create_account(request: Request, kind: str, s: Admin) -> HTMLResponse:
    """A new advertiser or publisher; its API key is shown once, as the API shows it."""
    form = await form_of(request, s)
    if kind not in ("advertisers", "publishers"):
        raise ApiError(404, f"nothing to create at {kind!r}; advertisers or publishers")
    body: dict[str, Any] = {"name": forms.text(form, "name")}
    try:
        if kind == "publishers":
            body.update(forms.drop_none({"floor_fen": forms.yuan_to_fen(form, "floor")}))
        async with Api(request, s.api_key) as api:
            created = await api.post(f"/v1/{kind}", body)
    except (forms.FieldError, ApiError) as e:
        return await _admin_page(request, s, 422, error=forms.form_error(e)[0], error_kind=kind)
    return await _admin_page(request, s, 201, created=created, created_kind=kind)


@router.post("/publishers/{publisher_id}", response_model=None)
async def edit_publisher(request: Request, publisher_id: str, s: Admin) -> HTMLResponse | RedirectResponse:
    """A publisher's floor and house ad (the API lets only the admin set them)."""
    form = await form_of(request, s)
    body: dict[str, Any] = {}
    try:
        floor = forms.yuan_to_fen(form, "floor")
        if floor is not None:
            body["floor_fen"] = floor
        if forms.text(form, "house_title"):
            body["fallback_ad"] = {"title": forms.text(form, "house_title"),
                                   "description": forms.text(form, "house_description"),
                                   "landing_url": forms.text(form, "house_url")}
        async with Api(request, s.api_key) as api:
            await api.patch(f"/v1/publishers/{publisher_id}", body)
    except (forms.FieldError, ApiError) as e:
        return await _admin_page(request, s, 422, error=forms.form_error(e)[0], error_kind="publishers")
    return redirect("/console/admin?saved=" + publisher_id)
