"""Publisher self-service: site tokens for the ad tag and brand controls (publisher key).

Changes apply within a second on every process (the publisher and site lookups of the serving
path are cached for at most ``LOOKUP_TTL_S``), as catalog changes do.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from service.api.responses import errors
from service.api.routes import ctx
from service.api.tag_schemas import Controls, ControlsPatch, SiteIn, SiteOut, SitePatch
from service.auth import PublisherP
from service.errors import Conflict
from service.store.records import Publisher, Site
from service.tag.sites import MAX_SITES

router = APIRouter(prefix="/v1", tags=["publisher"], responses=errors(401, 403))


def _snippet(request: Request, token: str) -> str:
    base = (ctx(request).settings.public_base_url or str(request.base_url)).rstrip("/")
    return (f'<script async src="{base}/v1/tag.js" data-site="{token}"></script>\n'
            '<div data-admatch-slot data-slots="2"></div>')


def _site_out(request: Request, s: Site) -> SiteOut:
    return SiteOut(token=s.token, name=s.name, origins=list(s.origins), snippet=_snippet(request, s.token))


@router.post("/sites", status_code=status.HTTP_201_CREATED, response_model=SiteOut,
             summary="Register a site: a public token for the ad tag and the origins it may serve",
             responses=errors(409, 422))
async def create_site(body: SiteIn, request: Request, p: PublisherP) -> SiteOut:
    store = ctx(request).sites
    if await store.count(p.id) >= MAX_SITES:
        raise Conflict(f"you have {MAX_SITES} sites already; delete one or add origins to an existing one")
    return _site_out(request, await store.create(p.id, body.name, body.origins))


@router.get("/sites", response_model=list[SiteOut], summary="Your sites and their tokens")
async def list_sites(request: Request, p: PublisherP) -> list[SiteOut]:
    return [_site_out(request, s) for s in await ctx(request).sites.list(p.id)]


@router.patch("/sites/{token}", response_model=SiteOut, summary="Rename a site or replace its origins",
              responses=errors(404, 422))
async def update_site(token: str, body: SitePatch, request: Request, p: PublisherP) -> SiteOut:
    s = await ctx(request).sites.update(p.id, token, name=body.name, origins=body.origins)
    return _site_out(request, s)


@router.delete("/sites/{token}", status_code=204, response_class=Response,
               summary="Delete a site: its token gets no more ads", responses=errors(404))
async def delete_site(token: str, request: Request, p: PublisherP) -> Response:
    await ctx(request).sites.delete(p.id, token)
    return Response(status_code=204)


def _controls(pub: Publisher) -> Controls:
    return Controls(publisher_id=pub.id, floor_fen=pub.floor_fen, blocked_categories=list(pub.blocked_categories),
                    blocked_advertisers=list(pub.blocked_advertisers), blocked_domains=list(pub.blocked_domains),
                    ad_label=pub.ad_label)


@router.get("/controls", response_model=Controls, summary="Your brand controls and ad label")
async def get_controls(request: Request, p: PublisherP) -> Controls:
    return _controls(await ctx(request).catalog.get_publisher(p.id))


@router.patch("/controls", response_model=Controls,
              summary="Change blocked categories, advertisers, advertiser domains or the ad label "
                      "(a list given replaces the old one; applies within 1 s)", responses=errors(422))
async def update_controls(body: ControlsPatch, request: Request, p: PublisherP) -> Controls:
    changes = {k: tuple(dict.fromkeys(v)) if isinstance(v, list) else v
               for k, v in body.model_dump(exclude_unset=True, exclude_none=True).items()}
    return _controls(await ctx(request).catalog.update_publisher(p.id, changes))
