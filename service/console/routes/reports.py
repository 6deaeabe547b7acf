"""An advertiser's campaign report (charts by day and by hour, tables by ad, matched keyword and page
category, CSV export of exactly the API's CSV) and the match preview."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from service.console import forms
from service.console.api import Api, ApiError
from service.console.charts import day_before, invalid_by_reason, report_chart
from service.console.session import Session
from service.console.web import form_of, render, role

router = APIRouter(prefix="/console", include_in_schema=False)
Advertiser = Annotated[Session, Depends(role("advertiser"))]
DIMENSIONS = ("ads", "keywords", "categories")



@router.get("/campaigns/{campaign_id}/report", response_class=HTMLResponse)
async def campaign_report(request: Request, campaign_id: str, s: Advertiser, start: str | None = None,
                          end: str | None = None) -> HTMLResponse:
    start, end = forms.day(start), forms.day(end)
    base = f"/v1/reports/campaigns/{campaign_id}"
    async with Api(request, s.api_key) as api:
        campaign = await api.get(f"/v1/campaigns/{campaign_id}")
        daily = await api.get(base, **{"from": start, "to": end, "granularity": "day"})
        hourly = await api.get(base, **{"from": day_before(daily["to"]), "to": daily["to"], "granularity": "hour"})
        by = {d: await api.get(f"{base}/{d}", **{"from": daily["from"], "to": daily["to"]}) for d in DIMENSIONS}
        ads = {a["id"]: a["title"] for a in await api.get(f"/v1/campaigns/{campaign_id}/ads")}
    charts = {"daily": report_chart(daily["rows"]), "hourly": report_chart(hourly["rows"], hours=True)}
    return render(request, "report.html", s, campaign=campaign, daily=daily, hourly=hourly, by=by, ads=ads,
                  charts=charts, invalid=invalid_by_reason(daily["totals"]))


@router.get("/campaigns/{campaign_id}/report.csv")
async def campaign_report_csv(request: Request, campaign_id: str, s: Advertiser, start: str | None = None,
                              end: str | None = None, granularity: str = "day", by: str | None = None) -> Response:
    """The API's own CSV, byte for byte, as a download."""
    path = f"/v1/reports/campaigns/{campaign_id}" + (f"/{by}" if by in DIMENSIONS else "")
    params: dict[str, Any] = {"from": forms.day(start), "to": forms.day(end), "format": "csv"}
    if by not in DIMENSIONS:
        params["granularity"] = "hour" if granularity == "hour" else "day"
    async with Api(request, s.api_key) as api:
        r = await api.call("GET", path, params={k: v for k, v in params.items() if v is not None})
    name = f"admatch-{campaign_id}-{by or granularity}.csv"
    return Response(r.content, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@router.get("/preview", response_class=HTMLResponse)
async def preview_form(request: Request, s: Advertiser) -> HTMLResponse:
    return render(request, "preview.html", s)


@router.post("/preview", response_class=HTMLResponse)
async def preview(request: Request, s: Advertiser) -> HTMLResponse:
    form = await form_of(request, s)
    url, text, title = forms.text(form, "url"), forms.text(form, "text"), forms.text(form, "title")
    page = forms.drop_none({"url": url or None, "title": title or None, "text": text or None})
    try:
        async with Api(request, s.api_key) as api:
            result = await api.post("/v1/preview", {"page": page})
    except ApiError as e:
        if e.status not in (404, 413, 422):
            raise
        return render(request, "preview.html", s, e.status, error=e.detail, form=form)
    return render(request, "preview.html", s, result=result, form=form)
