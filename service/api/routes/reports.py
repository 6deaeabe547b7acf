"""Reports: advertisers see their own campaigns, publishers their own figures (admin sees all)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse

from service.api.report_schemas import AdvertiserReport, BreakdownReport, CampaignReport, PublisherReport
from service.api.responses import errors
from service.api.routes import ctx
from service.auth import principal
from service.billing import account_report, breakdown, reports
from service.context import AppContext
from service.errors import Forbidden, InvalidInput, NotFound
from service.store.catalog import Principal
from service.store.records import Role

router = APIRouter(prefix="/v1/reports", tags=["reports"], responses=errors(401, 403, 404, 422))
AnyKey = Annotated[Principal, Depends(principal)]
# The days a report may name: counters live 400 days, and the bounds keep date arithmetic in range.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)
DAY_PATTERN = r"^2[0-9]{3}-[0-9]{2}-[0-9]{2}$"  # FIRST_DAY..LAST_DAY, stated in the OpenAPI document


def _check_day(name: str, day: date | None) -> None:
    if day is not None and not FIRST_DAY <= day <= LAST_DAY:
        raise InvalidInput(f"{name} ({day}) is outside the days reports cover ({FIRST_DAY} to {LAST_DAY}); "
                           "ask for a day in that range", extra={"fields": [{"field": name, "message": "out of range"}]})


def _range(request: Request, start: date | None, end: date | None) -> tuple[date, date]:
    _check_day("from", start)
    _check_day("to", end)
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
             start: date, end: date, granularity: str, fmt: str, extra: dict[str, Any] | None = None) -> Any:
    if fmt == "csv":
        return PlainTextResponse(reports.to_csv(rows, total), media_type="text/csv; charset=utf-8")
    return {**subject, "from": start.isoformat(), "to": end.isoformat(), "granularity": granularity,
            "timezone": ctx(request).settings.timezone, "rows": [r.as_dict() for r in rows],
            "totals": total.as_dict(), **(extra or {})}


Start = Annotated[date | None, Query(
    alias="from", json_schema_extra={"pattern": DAY_PATTERN},
    description=f"first day, YYYY-MM-DD (default: 6 days before `to`); from and to span at most "
                f"{reports.MAX_DAYS} days, from is not after to, both in {FIRST_DAY}..{LAST_DAY} (else 422)")]
End = Annotated[date | None, Query(alias="to", json_schema_extra={"pattern": DAY_PATTERN},
                                   description="last day, YYYY-MM-DD (default: today)")]
Gran = Annotated[Literal["hour", "day"], Query(description="row per hour or per day")]
Fmt = Annotated[Literal["json", "csv"], Query(alias="format", description="json, or csv (text/csv)")]


def _report(model: type, summary: str, description: str | None = None) -> dict[str, Any]:
    """The route arguments of a report: JSON by its model, or CSV with format=csv."""
    return {"summary": summary, "description": description, "response_model": model, "responses": {200: {
        "description": "the report as JSON, or as CSV with format=csv (a row per period, then the total)",
        "content": {"text/csv": {"schema": {"type": "string"}}}}}}


@router.get("/advertisers/{advertiser_id}", **_report(
    AdvertiserReport, "An advertiser's campaigns side by side: impressions, clicks, spend and conversions of each",
    "One read for an account's campaign list (what the console shows beside each campaign). The "
    "advertiser's own key, or the admin's."))
async def advertiser_report(advertiser_id: str, request: Request, p: AnyKey, start: Start = None, end: End = None,
                            granularity: Annotated[Literal["total", "day"], Query(
                                description="one row per campaign over the range, or per campaign and day")] = "total",
                            fmt: Fmt = "json") -> Any:
    c = ctx(request)
    if p.role == Role.ADVERTISER and p.id != advertiser_id:
        raise NotFound(f"advertiser {advertiser_id!r} is not yours; ask for your own id ({p.id!r})")
    if p.role not in (Role.ADVERTISER, Role.ADMIN):
        raise Forbidden("advertiser reports need the advertiser's own key")
    await c.catalog.get_advertiser(advertiser_id)
    s, e = _range(request, start, end)
    await c.billing.flush()  # this process's gathered impressions first
    campaigns = [(x.id, x.name) for x in await c.catalog.list_campaigns(advertiser_id)]
    rows, total = await account_report.campaign_rows(c.redis, campaigns, s, e, granularity)
    return _respond(request, {"advertiser_id": advertiser_id}, rows, total, s, e, granularity, fmt)


async def _campaign_reader(request: Request, p: Principal, campaign_id: str) -> AppContext:
    """The app's context once ``p`` may read ``campaign_id``'s reports (its advertiser or the admin),
    with this process's gathered impressions flushed first."""
    c = ctx(request)
    if p.role == Role.ADVERTISER:
        await c.catalog.get_campaign(p.id, campaign_id)  # 404 for another advertiser's campaign
    elif p.role != Role.ADMIN:
        raise Forbidden("campaign reports need the owning advertiser's key")
    await c.billing.flush()
    return c


@router.get("/campaigns/{campaign_id}", **_report(
    CampaignReport, "A campaign's impressions, clicks, invalid clicks, spend, conversions, value and ROI",
    "JSON reports also carry `chain`: for each billing day in the range with ledger entries, the ledger "
    "hash chain's head (`head`: its last entry's SHA-256, `seq`, `entries` that day). Keep them: "
    "`admatch ledger verify` and any auditor can recompute the chain and check it still ends in the heads "
    "you saw."))
async def campaign_report(campaign_id: str, request: Request, p: AnyKey, start: Start = None, end: End = None,
                          granularity: Gran = "day", fmt: Fmt = "json") -> Any:
    c = await _campaign_reader(request, p, campaign_id)
    s, e = _range(request, start, end)
    rows, total = await reports.campaign_rows(c.redis, campaign_id, s, e, granularity)
    heads = await reports.chain_heads(c.redis, campaign_id, s, e) if fmt == "json" else {}
    return _respond(request, {"campaign_id": campaign_id}, rows, total, s, e, granularity, fmt,
                    {"chain": {day: h.as_dict() for day, h in heads.items()}})


@router.get("/campaigns/{campaign_id}/{dimension}", **_report(
    BreakdownReport, "A campaign's impressions, clicks, spend and conversions by ad, matched keyword or page category"))
async def campaign_breakdown(campaign_id: str, dimension: Literal["ads", "keywords", "categories"], request: Request,
                             p: AnyKey, start: Start = None, end: End = None,
                             granularity: Annotated[Literal["total", "day"], Query(
                                 description="one row per key over the range, or per key and day")] = "total",
                             fmt: Fmt = "json") -> Any:
    c = await _campaign_reader(request, p, campaign_id)
    s, e = _range(request, start, end)
    dim: breakdown.Dimension = {"ads": "ad", "keywords": "keyword", "categories": "category"}[dimension]  # type: ignore[assignment]
    rows, total = await breakdown.breakdown_rows(c.redis, campaign_id, s, e, dim, granularity)
    return _respond(request, {"campaign_id": campaign_id, "by": dim}, rows, total, s, e, granularity, fmt)


@router.get("/publishers/{publisher_id}", **_report(PublisherReport, "A publisher's impressions, clicks and earnings"))
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
