"""The ad tag's endpoints: its script, its one match request per page view, viewable beacons.

The match request comes from readers' browsers on publishers' pages, authorised by the site token
alone: it must come from an origin registered for the token (``Origin``, else ``Referer``), and is
rate-limited per token and per client IP. It is sent as ``text/plain`` (a CORS "simple" request:
no preflight). Answers carry ``Access-Control-Allow-Origin`` for the requesting origin: ads only
for registered origins; refusals too, so the publisher's console can say why (they hold no data).
"""

from __future__ import annotations

import gzip
import hashlib
import time
from dataclasses import dataclass
from functools import cache
from importlib import resources

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from matching.brand import ad_domain
from matching.origins import request_origin
from service.api.responses import errors
from service.api.routes import ctx
from service.api.routes.click import BadToken, client_ip
from service.api.routes.match import click_base
from service.api.tag_schemas import TagAd, TagMatchRequest, TagMatchResponse
from service.billing.clicks import BadClickToken
from service.errors import AdmatchError, Forbidden, InvalidInput
from service.serving.page_match import PageIn, match_page

router = APIRouter(prefix="/v1", tags=["ad tag"])

TAG_VERSION = "1"
TAG_MAX_AGE_S = 3600  # browsers and CDNs reuse the script this long, then revalidate (ETag)


class RateLimited(AdmatchError):
    status = 429
    code = "rate_limited"


@dataclass(frozen=True, slots=True)
class Script:
    body: bytes
    gzipped: bytes
    etag: str


@cache
def tag_script() -> Script:
    body = resources.files("service.tag").joinpath("static/tag.js").read_bytes()
    digest = hashlib.sha256(body).hexdigest()[:16]
    return Script(body, gzip.compress(body, 9, mtime=0), f'"{TAG_VERSION}-{digest}"')


@router.get("/tag.js", summary="The ad tag (JavaScript; cacheable, versioned by its ETag)",
            response_class=Response, responses={200: {"content": {"text/javascript": {}}}})
async def tag_js(request: Request) -> Response:
    s = tag_script()
    headers = {"Cache-Control": f"public, max-age={TAG_MAX_AGE_S}, stale-while-revalidate=86400",
               "ETag": s.etag, "X-Admatch-Tag-Version": TAG_VERSION, "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == s.etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(s.gzipped, media_type="text/javascript; charset=utf-8",
                        headers={**headers, "Content-Encoding": "gzip"})
    return Response(s.body, media_type="text/javascript; charset=utf-8", headers=headers)


def _cors(origin: str | None) -> dict[str, str]:
    h = {"Vary": "Origin", "Cache-Control": "no-store"}
    if origin:
        h["Access-Control-Allow-Origin"] = origin
    return h


def _parse(raw: bytes) -> TagMatchRequest:
    try:
        return TagMatchRequest.model_validate_json(raw)
    except ValidationError as e:
        fields = [{"field": ".".join(str(x) for x in err["loc"]) or "body",
                   "message": str(err["msg"]).removeprefix("Value error, ")} for err in e.errors()]
        raise InvalidInput("; ".join(f"{f['field']}: {f['message']}" for f in fields),
                           extra={"fields": fields}) from None


@router.post("/tag/match", summary="The ad tag's request: ads for the page it runs on",
             response_model=TagMatchResponse, responses=errors(403, 413, 422, 429, 503),
             openapi_extra={"requestBody": {"content": {"text/plain": {"example": (
                 '{"site": "demo-site-token", "slots": 2, "page": {"url": "http://127.0.0.1:8000/demo/article/ev",'
                 ' "title": "新能源汽车", "text": "纯电续航……"}}')}}}})
async def tag_match(request: Request) -> Response:
    origin = request_origin(request.headers.get("origin"), request.headers.get("referer"))
    try:
        out = await _tag_match(request, origin)
    except AdmatchError as e:
        headers = _cors(origin)
        if isinstance(e, RateLimited):
            headers["Retry-After"] = "60"
        return JSONResponse(e.body(), status_code=e.status, headers=headers)
    return JSONResponse(out.model_dump(mode="json"), headers=_cors(origin))


async def _tag_match(request: Request, origin: str | None) -> TagMatchResponse:
    c = ctx(request)
    s = c.settings
    body = _parse(await request.body())
    site = await c.sites.serving(body.site)
    if site is None:
        raise Forbidden(f"site token {body.site!r} is not registered; copy data-site from POST /v1/sites")
    if origin is None:
        raise Forbidden("the request names no Origin or Referer; the tag must run on a page of a registered "
                        "origin (a referrer policy of no-referrer with a same-origin request hides it)")
    if origin not in site.origins:
        raise Forbidden(f"origin {origin} is not registered for this site token; the publisher adds it with "
                        f"PATCH /v1/sites/{site.token} (registered: {', '.join(site.origins)})")
    now = time.time()
    per_site, per_ip = s.tag_requests_per_minute_per_site, s.tag_requests_per_minute_per_ip
    if await c.billing.over_rate_limit([f"tag-site:{site.token}"], now, per_site, per_site * 60):
        raise RateLimited(f"this site token made over {per_site} requests this minute; retry in a minute")
    if await c.billing.over_rate_limit([f"tag-ip:{client_ip(request, s.trust_forwarded_for)}"], now,
                                       per_ip, per_ip * 60):
        raise RateLimited(f"this address made over {per_ip} ad requests this minute; retry in a minute")
    publisher = await c.catalog.serving_publisher(site.publisher_id)
    pg = body.page
    m = await match_page(c, publisher, PageIn(title=pg.title, text=pg.text, url=pg.url), body.slots,
                         body.user_key)
    clicks = click_base(request)
    views = clicks.removesuffix("click/") + "view/"
    ads = [TagAd(title=x.candidate.ad.title, description=x.candidate.ad.description,
                 domain=ad_domain(x.candidate.ad.landing_url), click_url=clicks + x.token,
                 view_url=views + x.token) for x in m.placements]
    if not ads and publisher.fallback_ad:
        fb = publisher.fallback_ad
        ads = [TagAd(title=fb["title"], description=fb.get("description", ""), domain=ad_domain(fb["landing_url"]),
                     click_url=fb["landing_url"], view_url=None)]
    return TagMatchResponse(label=publisher.ad_label, ads=ads)


@router.post("/view/{token}", status_code=204, response_class=Response,
             summary="Viewable-impression beacon: the ad was ≥ 50 % in view for ≥ 1 s (counted once)",
             responses={204: {"description": "counted, or counted before"},
                        400: {"description": "forged or damaged token; nothing is recorded"}})
async def view(token: str, request: Request) -> Response:
    c = ctx(request)
    try:
        claim = c.signer.verify(token)
    except BadClickToken:
        raise BadToken("this view beacon's token is forged, altered or damaged; use view_url as returned") from None
    if c.views.in_window(claim, time.time()):
        await c.views.record(claim)
    return Response(status_code=204, headers={"Cache-Control": "no-store"})
