"""Click redirects: always send a genuine click on, and decide in Redis whether it is charged."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from matching.conversions import click_id, landing_with_click
from service import metrics
from service.api.responses import errors
from service.api.routes import ctx
from service.billing.click_flow import ClickJob, RateLimits, pending_click
from service.billing.clicks import BadClickToken
from service.errors import AdmatchError
from service.resilience.redis_guard import STORE_DOWN

router = APIRouter(prefix="/v1", tags=["publisher"])
log = logging.getLogger(__name__)


class BadToken(AdmatchError):
    status = 400
    code = "invalid_click_token"


def client_ip(request: Request, trust_forwarded: bool) -> str:
    if trust_forwarded and (fwd := request.headers.get("x-forwarded-for")):
        return fwd.split(",")[0].strip()
    return request.client.host if request.client else "unknown"


@router.get("/click/{token}", status_code=302, summary="Follow an ad click: 302 to the landing page",
            response_class=RedirectResponse,
            responses={302: {"description": "redirect to the ad's landing URL (no body), whether or not the "
                             "click is charged", "headers": {
                                 "Location": {"description": "the ad's landing URL", "schema": {"type": "string"}},
                                 "Cache-Control": {"schema": {"type": "string", "enum": ["no-store"]}}}},
                       **errors(400)})
async def click(token: str, request: Request) -> RedirectResponse:
    c = ctx(request)
    s = c.settings
    try:
        claim = c.signer.verify(token)
    except BadClickToken:
        raise BadToken("this click link is forged, altered or damaged; use the click_url from /v1/match "
                       "exactly as returned") from None
    job = ClickJob(pending_click(claim, time.time(), request.headers.get("user-agent"),
                                 client_ip(request, s.trust_forwarded_for), window_s=s.click_window_seconds,
                                 min_delay_s=s.click_min_delay_seconds))
    try:
        # The decision is not shown to the clicker: telling fraudsters why a click was not charged
        # helps them tune; advertisers see it in reports and the ledger.
        await job.run(c.billing, RateLimits(s.clicks_per_minute, s.clicks_per_hour),
                          c.ctr.log if c.ctr else None)
    except Exception as e:  # the reader is redirected all the same; the click is decided later
        if not isinstance(e, STORE_DOWN):
            log.exception("click %s could not be decided; spooled to be decided again", claim.imp)
        if c.spool is not None and await c.spool.put(job.click):
            metrics.CLICKS_SPOOLED.inc()
    # the landing page learns its click id (admatch_click) and sends it back with a conversion
    return RedirectResponse(landing_with_click(claim.url, click_id(claim.imp, claim.cmp)), status_code=302,
                            headers={"Cache-Control": "no-store"})
