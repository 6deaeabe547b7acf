"""Reports: advertisers see their own campaigns, publishers their own figures (admin sees all)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse

from service.api.routes import ctx
from service.auth import principal
from service.billing import breakdown, reports
from service.errors import Forbidden, InvalidInput, NotFound
from service.store.catalog import Principal
from service.store.records import Role

router = APIRouter(prefix="/v1/reports", tags=["reports"])
AnyKey = Annotated[Principal, Depends(principal)]


def _range(request: Request, start: date | None, end: date | None) -> tuple[date, date]:
    today = datetime.now(ctx(request).billing.clock.tz).date()
    end = end or today
    start = start or end - timedelta(days=6)
    if start > end:
        raise InvalidInput(f"from ({start}) is after to ({end}); swap them",
                           extra={"fields": [{"field": "from", "message": "after to"}]})
    if (end - start).days + 1 > reports.MAX_DAYS:
        raise InvalidInput(f"the range spans {(end - start).days + 1} days; ask for {reports.MAX_DAYS} or fewer",
                           extra={"fields": [{"field": "from", "message": "range too long"}]})
    return start, end


def _respond(request: Request, subject: dict[str, Any], rows: list[reports.Row], total: reports.Row,
             start: date, end: date, granularity: str, fmt: str) -> Any:
    if fmt == "csv":
        return PlainTextResponse(reports.to_csv(rows, total), media_type="text/csv; charset=utf-8")
    return {**subject, "from": start.isoformat(), "to": end.isoformat(), "granularity": granularity,
            "timezone": ctx(request).settings.timezone, "rows": [r.as_dict() for r in rows],
            "totals": total.as_dict()}


Start = Annotated[date | None, Query(alias="from", description="first day, YYYY-MM-DD (default: 6 days ago)")]
End = Annotated[date | None, Query(alias="to", description="last day, YYYY-MM-DD (default: today)")]
Gran = Annotated[Literal["hour", "day"], Query(description="row per hour or per day")]
Fmt = Annotated[Literal["json", "csv"], Query(alias="format")]


@router.get("/campaigns/{campaign_id}",
            summary="A campaign's impressions, clicks, invalid clicks, spend, conversions, value and ROI")
async def campaign_report(campaign_id: str, request: Request, p: AnyKey, start: Start = None, end: End = None,
                          granularity: Gran = "day", fmt: Fmt = "json") -> Any:
    c = ctx(request)
    if p.role == Role.ADVERTISER:
        await c.catalog.get_campaign(p.id, campaign_id)  # 404 for another advertiser's campaign
    elif p.role != Role.ADMIN:
        raise Forbidden("campaign reports need the owning advertiser's key")
    s, e = _range(request, start, end)
    await c.billing.flush()  # this process's gathered impressions first
    rows, total = await reports.campaign_rows(c.redis, campaign_id, s, e, granularity)
    return _respond(request, {"campaign_id": campaign_id}, rows, total, s, e, granularity, fmt)


@router.get("/campaigns/{campaign_id}/{dimension}",
            summary="A campaign's impressions, clicks, spend and conversions by ad, matched keyword or page category")
async def campaign_breakdown(campaign_id: str, dimension: Literal["ads", "keywords", "categories"], request: Request,
                             p: AnyKey, start: Start = None, end: End = None,
                             granularity: Annotated[Literal["total", "day"], Query(
                                 description="one row per key over the range, or per key and day")] = "total",
                             fmt: Fmt = "json") -> Any:
    c = ctx(request)
    if p.role == Role.ADVERTISER:
        await c.catalog.get_campaign(p.id, campaign_id)  # 404 for another advertiser's campaign
    elif p.role != Role.ADMIN:
        raise Forbidden("campaign reports need the owning advertiser's key")
    s, e = _range(request, start, end)
    await c.billing.flush()  # this process's gathered impressions first
    dim: breakdown.Dimension = {"ads": "ad", "keywords": "keyword", "categories": "category"}[dimension]  # type: ignore[assignment]
    rows, total = await breakdown.breakdown_rows(c.redis, campaign_id, s, e, dim, granularity)
    return _respond(request, {"campaign_id": campaign_id, "by": dim}, rows, total, s, e, granularity, fmt)


@router.get("/publishers/{publisher_id}", summary="A publisher's impressions, clicks and earnings")
async def publisher_report(publisher_id: str, request: Request, p: AnyKey, start: Start = None,
                           end: End = None, granularity: Gran = "day", fmt: Fmt = "json") -> Any:
    c = ctx(request)
    if p.role == Role.PUBLISHER and p.id != publisher_id:
        raise NotFound(f"publisher {publisher_id!r} is not yours; ask for your own id ({p.id!r})")
    if p.role == Role.ADVERTISER:
        raise Forbidden("publisher reports need the publisher's own key")
    await c.catalog.get_publisher(publisher_id)
    s, e = _range(request, start, end)
    await c.billing.flush()  # this process's gathered impressions first
    rows, total = await reports.publisher_rows(c.redis, publisher_id, s, e, granularity,
                                               c.settings.revenue_share)
    return _respond(request, {"publisher_id": publisher_id, "revenue_share": c.settings.revenue_share},
                    rows, total, s, e, granularity, fmt)
