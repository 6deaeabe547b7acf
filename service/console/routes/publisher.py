"""A publisher's earnings (charts by day and hour) and its sites: tokens, allowed origins, the tag
snippet, and its controls (blocked categories, advertisers and domains, the 广告 label)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from service.console import forms
from service.console.api import Api, ApiError
from service.console.charts import day_before, report_chart
from service.console.session import Session
from service.console.web import form_of, redirect, render, role

router = APIRouter(prefix="/console", include_in_schema=False)
Publisher = Annotated[Session, Depends(role("publisher"))]



@router.get("/earnings", response_class=HTMLResponse)
async def earnings(request: Request, s: Publisher, start: str | None = None, end: str | None = None) -> HTMLResponse:
    base = f"/v1/reports/publishers/{s.principal_id}"
    async with Api(request, s.api_key) as api:
        daily = await api.get(base, **{"from": forms.day(start), "to": forms.day(end), "granularity": "day"})
        hourly = await api.get(base, **{"from": day_before(daily["to"]), "to": daily["to"], "granularity": "hour"})
    charts = {"daily": _publisher_chart(daily["rows"]), "hourly": _publisher_chart(hourly["rows"], hours=True)}
    return render(request, "earnings.html", s, daily=daily, hourly=hourly, charts=charts)


def _publisher_chart(rows: list[dict[str, Any]], hours: bool = False) -> dict[str, Any]:
    chart = report_chart(rows, hours=hours, money="earnings_fen")
    chart["viewability"] = [round(float(r.get("viewability", 0.0)) * 100, 2) for r in rows]
    chart["fill_rate"] = [round(float(r.get("fill_rate", 0.0)) * 100, 2) for r in rows]
    return chart


async def _sites_page(request: Request, s: Session, status_code: int = 200, **extra: Any) -> HTMLResponse:
    async with Api(request, s.api_key) as api:
        sites = await api.get("/v1/sites")
        controls = await api.get("/v1/controls")
        categories = await api.get("/v1/categories")
    names = {c["id"]: c["name"] for c in categories.get("categories", [])} if isinstance(categories, dict) else {}
    return render(request, "sites.html", s, status_code, sites=sites, controls=controls, category_names=names,
                  **extra)


@router.get("/sites", response_class=HTMLResponse)
async def sites(request: Request, s: Publisher) -> HTMLResponse:
    return await _sites_page(request, s)


@router.post("/sites", response_model=None)
async def create_site(request: Request, s: Publisher) -> HTMLResponse | RedirectResponse:
    form = await form_of(request, s)
    try:
        async with Api(request, s.api_key) as api:
            await api.post("/v1/sites", {"name": forms.text(form, "name"), "origins": forms.lines(form, "origins")})
    except ApiError as e:
        message, fields = forms.form_error(e)
        return await _sites_page(request, s, 422, site_error=message, error_fields=fields, site_form=form)
    return redirect("/console/sites")


@router.post("/sites/{token}/delete")
async def delete_site(request: Request, token: str, s: Publisher) -> RedirectResponse:
    await form_of(request, s)
    async with Api(request, s.api_key) as api:
        await api.delete(f"/v1/sites/{token}")
    return redirect("/console/sites")


@router.post("/controls", response_model=None)
async def edit_controls(request: Request, s: Publisher) -> HTMLResponse | RedirectResponse:
    form = await form_of(request, s)
    body = {"blocked_categories": forms.lines(form, "blocked_categories"),
            "blocked_advertisers": forms.lines(form, "blocked_advertisers"),
            "blocked_domains": forms.lines(form, "blocked_domains"),
            "ad_label": forms.text(form, "ad_label") or None}
    try:
        async with Api(request, s.api_key) as api:
            await api.patch("/v1/controls", forms.drop_none(body))
    except ApiError as e:
        message, fields = forms.form_error(e)
        return await _sites_page(request, s, 422, controls_error=message, error_fields=fields)
    return redirect("/console/sites?saved=1")
