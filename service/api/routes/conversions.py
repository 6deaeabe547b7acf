"""Conversions: the pixel a landing page loads and the server-to-server postback (advertiser key).

Both carry the click id the landing URL was opened with (``admatch_click``), the event type, an
optional value in fen and an optional order id; :class:`service.conversions.recorder.Conversions`
decides. The pixel always answers a 1×1 GIF, whatever happened (a browser cannot act on an error,
and a fraudster learns nothing); the postback answers what became of the conversion.
"""

from __future__ import annotations

import base64
import logging
import re
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from matching.conversions import MAX_CLICK_ID, ConversionReason, valid_event
from service.api.responses import errors
from service.api.routes import ctx
from service.api.schemas import ConversionIn, ConversionOut
from service.auth import AdvertiserP
from service.conversions.recorder import Conversions, Outcome
from service.errors import Forbidden, NotFound, Unavailable

router = APIRouter(prefix="/v1", tags=["advertiser: conversions"])
log = logging.getLogger(__name__)

# The smallest transparent 1×1 GIF (43 bytes).
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_ORDER = re.compile(r"^[\x21-\x7e]{1,64}$")
MAX_VALUE_FEN = 10**12

DETAIL = {
    ConversionReason.COUNTED: "counted",
    ConversionReason.DUPLICATE_ORDER: "this order id was counted already; it is not counted or charged again",
    ConversionReason.INVALID_CLICK: "the click was not a valid one (a crawler, too fast, rate limited or over "
                                    "budget); recorded, not counted",
    ConversionReason.OUTSIDE_WINDOW: "the conversion came later than the attribution window after the click; "
                                     "recorded, not counted",
}


def _conversions(request: Request) -> Conversions:
    conv = ctx(request).conversions
    if conv is None:
        raise Unavailable("conversions are not set up in this process; retry shortly")
    return conv


@router.get("/conv.gif", summary="Conversion pixel: always a 1×1 GIF",
            responses={200: {"content": {"image/gif": {}}, "description": "a transparent 1×1 GIF"}})
async def pixel(request: Request,
                click: Annotated[str, Query(description="the admatch_click of the landing URL")] = "",
                event: Annotated[str, Query(description="order, lead, conversation_started …")] = "",
                value: Annotated[str, Query(description="value in fen (optional)")] = "",
                order: Annotated[str, Query(description="order id (optional)")] = "") -> Response:
    # every parameter as text, checked here: a malformed pixel is ignored, never an error page
    try:
        value_fen = int(value) if value else 0
        if (click and len(click) <= MAX_CLICK_ID and valid_event(event) and 0 <= value_fen <= MAX_VALUE_FEN
                and (not order or _ORDER.match(order))):
            await _conversions(request).record(click, event, value_fen, order or None)
    except Exception:  # the pixel answers alike whatever happened
        log.warning("conversion pixel for click %.80r not recorded", click, exc_info=True)
    return Response(PIXEL, media_type="image/gif",
                    headers={"Cache-Control": "no-store, no-cache, must-revalidate", "Pragma": "no-cache"})


class UnknownClick(NotFound):
    code = "unknown_click"


class OtherAdvertiser(Forbidden):
    code = "other_advertiser"


@router.post("/conversions", summary="Report a conversion (server to server)",
             responses={**errors(401, 403, 404, 422, 503),
                        404: {**errors(404)[404], "description": "unknown_click: not a click id of ours, or expired"},
                        403: {**errors(403)[403], "description": "other_advertiser: the click is another "
                                                                 "advertiser's; or the key is not an advertiser's"}})
async def postback(body: ConversionIn, request: Request, p: AdvertiserP) -> ConversionOut:
    out: Outcome = await _conversions(request).record(body.click, body.event, body.value_fen, body.order_id,
                                                      advertiser=p.id)
    if out.reason == ConversionReason.UNKNOWN_CLICK:
        raise UnknownClick("click is not a click id admatch issued, or its click is older than the attribution "
                           "window and a day; send the admatch_click value of the landing URL unchanged",
                           extra={"fields": [{"field": "click", "message": "unknown click"}]})
    if out.reason == ConversionReason.OTHER_ADVERTISER:
        raise OtherAdvertiser("click belongs to another advertiser's ad; send conversions of your own ads' "
                              "clicks with your own key",
                              extra={"fields": [{"field": "click", "message": "not yours"}]})
    return ConversionOut(counted=out.counted, reason=out.reason.value, detail=DETAIL.get(out.reason, out.reason.value),
                         charged_fen=out.amount_fen, billing=out.billing, campaign_id=out.campaign_id,
                         ad_id=out.ad_id)


