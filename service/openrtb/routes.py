"""HTTP: the bid endpoint (``ADMATCH_OPENRTB_PATH``), win and billing notices, the exchange admin API.

Status codes follow OpenRTB 2.6 §2 and Prebid Server: 200 with a BidResponse, 204 for a no-bid
(or 200 with ``nbr`` for an exchange that asked for reasons), 400 for a request that is not a
BidRequest (a JSON error naming the field), 401/403 for keys. Never a 5xx for any request body.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from service.api.responses import errors
from service.api.routes import ctx
from service.api.routes.match import click_base
from service.api.schemas import ErrorOut
from service.auth import Admin, principal, require
from service.billing.clicks import BadClickToken
from service.errors import AdmatchError, Forbidden, InvalidInput, NotReady
from service.openrtb.bidder import OpenRtb, bid
from service.openrtb.exchanges import ExchangeStore
from service.openrtb.request import read_request
from service.openrtb.schemas import ExchangeDay, ExchangeIn, ExchangeOut, ExchangeReport
from service.openrtb.wire import BidRequest, BidResponse
from service.settings import Settings
from service.store.catalog import Principal
from service.store.records import Role

HEADERS = {"x-openrtb-version": "2.6"}
ExchangeP = Annotated[Principal, Depends(require(Role.EXCHANGE))]
AnyKey = Annotated[Principal, Depends(principal)]


class BadBidRequest(AdmatchError):
    status = 400
    code = "invalid_bid_request"


def _state(request: Request) -> tuple[OpenRtb, ExchangeStore]:
    s = getattr(request.app.state, "openrtb", None)
    if s is None:
        raise NotReady("the OpenRTB bidder is starting; retry shortly")
    return s  # type: ignore[no-any-return]


def _notice_base(request: Request, bid_path: str) -> str:
    configured = ctx(request).settings.public_base_url
    base = configured.rstrip("/") if configured else str(request.base_url).rstrip("/")
    return base + bid_path.rsplit("/", 1)[0] + "/"


def _parse(raw: bytes) -> BidRequest:
    try:
        return BidRequest.model_validate_json(raw)
    except ValidationError as e:
        fields = [{"field": ".".join(str(p) for p in err["loc"]) or "body",
                   "message": str(err["msg"])} for err in e.errors()]
        detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:10])
        raise BadBidRequest(f"not an OpenRTB 2.6 BidRequest: {detail}", extra={"fields": fields[:50]}) from None


def router_for(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["openrtb"])
    path = settings.openrtb_path
    notices = path.rsplit("/", 1)[0]

    @router.post(path, summary="OpenRTB 2.6 bid request → BidResponse (exchange key)",
                 responses={**errors(401, 403, 413, 503), 204: {"description": "no bid"},
                            400: {"model": ErrorOut, "description": "not an OpenRTB 2.6 BidRequest"}})
    async def openrtb_bid(request: Request, p: ExchangeP) -> Response:
        started = time.perf_counter()
        o, store = _state(request)
        c = ctx(request)
        req = _parse(await request.body())
        exchange = await store.get(p.id)
        view = read_request(req, preferred_currency=exchange.currency, rates=o.rates)
        site = req.site or req.app
        cattax = getattr(site, "cattax", None) if site is not None else None
        cattax = req.cattax if req.cattax is not None else cattax
        out = await bid(c, o, exchange, view, click_base=click_base(request),
                        notice_base=_notice_base(request, path), cattax=cattax, started=started)
        if out.response is not None:
            return JSONResponse(out.response.model_dump(exclude_none=True), headers=HEADERS)
        if exchange.nbr_body:
            body = BidResponse(id=req.id, nbr=out.nbr if out.nbr is not None else 0)
            return JSONResponse(body.model_dump(exclude_none=True), headers=HEADERS)
        return Response(status_code=status.HTTP_204_NO_CONTENT, headers=HEADERS)

    async def _notice(request: Request, token: str, kind: str) -> Response:
        o, _ = _state(request)
        c = ctx(request)
        try:
            claim = c.signer.verify(token)
        except BadClickToken as e:
            raise InvalidInput(f"notice token: {e}; use the nurl/burl of the bid as sent") from None
        test, _, xid = claim.pub.partition(":")
        if test not in ("x", "xt"):
            raise InvalidInput("notice token is not from an OpenRTB bid")
        if test == "x":
            now = time.time()
            day = c.billing.clock.day(claim.issued)
            field = "wins" if kind == "w" else "billed"
            counted = await o.stats.notice_once(xid, kind, claim.imp, day, field)
            if counted and kind == "b":  # the impression is counted on the billing notice only
                await c.billing.record_impressions(claim.pub, [(claim.ad, claim.cmp)], now, None)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.get(notices + "/win/{token}", status_code=204, summary="Win notice (nurl)", responses=errors(422))
    async def win(token: str, request: Request) -> Response:
        return await _notice(request, token, "w")

    @router.get(notices + "/bill/{token}", status_code=204, summary="Billing notice (burl): counts the impression",
                responses=errors(422))
    async def bill(token: str, request: Request) -> Response:
        return await _notice(request, token, "b")

    @router.post("/v1/exchanges", status_code=201, response_model=ExchangeOut,
                 summary="Create an OpenRTB exchange and its API key (admin)", responses=errors(401, 403, 422))
    async def create_exchange(body: ExchangeIn, request: Request, _: Admin) -> ExchangeOut:
        _o, store = _state(request)
        x, key = await store.create(body.name, body.currency, body.revenue_share, shading=body.shading,
                                    min_cpc_fen=body.min_cpc_fen, nbr_body=body.nbr_body)
        return ExchangeOut(**_fields(x), api_key=key)

    @router.get("/v1/reports/exchanges/{exchange_id}", response_model=ExchangeReport,
                summary="Bid requests, bids, wins, billed impressions and win rate by day (admin or the exchange)",
                responses=errors(401, 403, 404, 422))
    async def exchange_report(exchange_id: str, request: Request, p: AnyKey,
                              start: Annotated[date, Query(alias="from")],
                              end: Annotated[date, Query(alias="to")]) -> ExchangeReport:
        if p.role != Role.ADMIN and not (p.role == Role.EXCHANGE and p.id == exchange_id):
            raise Forbidden("only the admin or the exchange itself reads its report")
        if end < start or (end - start).days > 366:
            raise InvalidInput("from must not be after to, and at most 366 days apart",
                               extra={"fields": [{"field": "to", "message": "range"}]})
        o, store = _state(request)
        await store.get(exchange_id)
        rows = await o.stats.report(exchange_id, start, end)
        return ExchangeReport(exchange_id=exchange_id, days=[ExchangeDay.model_validate(r) for r in rows])

    return router


def _fields(x: Any) -> dict[str, Any]:
    return {k: getattr(x, k) for k in ("id", "name", "currency", "revenue_share", "shading", "min_cpc_fen",
                                        "nbr_body")}
