"""Ops endpoints: liveness, readiness, index status and reload."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from matching.categories import load_taxonomy
from service.api.responses import errors
from service.api.routes import ctx
from service.api.schemas import CategoryOut, Health, IndexStatus, Readiness
from service.auth import Admin

router = APIRouter(tags=["ops"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", summary="Readiness: index loaded and Redis reachable", response_model=Readiness,
            responses={503: {"model": Readiness, "description": "not ready", "content": {"application/json": {
                "example": {"status": "not_ready", "index_loaded": False, "redis": True}}}}})
async def readyz(request: Request) -> JSONResponse:
    c = ctx(request)
    try:
        redis_ok = bool(await c.redis.ping())
    except Exception:
        redis_ok = False
    loaded = c.index.snapshot is not None
    ok = redis_ok and loaded
    body = {"status": "ready" if ok else "not_ready", "index_loaded": loaded, "redis": redis_ok}
    if c.index.last_error:
        body["index_error"] = c.index.last_error
    return JSONResponse(body, status_code=200 if ok else 503)


def index_status(request: Request) -> IndexStatus:
    holder = ctx(request).index
    snap = holder.snapshot
    if snap is None:
        return IndexStatus(loaded=False, version=None, ad_count=0, built_at=None)
    m = snap.manifest
    return IndexStatus(loaded=True, version=m.version, ad_count=m.ad_count, built_at=m.built_at,
                       dense_dim=m.dense_dim, faiss_index=m.faiss_index,
                       live_changes=holder.live_changes, change_log_position=holder.position)


@router.get("/v1/categories", summary="The IAB Content Taxonomy 3.1 nodes admatch classifies into")
async def categories() -> list[CategoryOut]:
    return [CategoryOut(id=c.id, name=c.name, name_zh=c.name_zh, tier=c.tier, parent=c.parent,
                        sensitive=c.sensitive) for c in load_taxonomy()]


@router.get("/v1/index/status", summary="The serving index: version, ad count, build time")
async def get_index_status(request: Request) -> IndexStatus:
    return index_status(request)


@router.post("/v1/index/reload", summary="Load the newest published index now (admin)", responses=errors(401, 403))
async def reload_index(request: Request, _: Admin) -> IndexStatus:
    await ctx(request).index.refresh()
    return index_status(request)


@router.get("/metrics", summary="Prometheus metrics of this process", response_class=Response,
            responses={200: {"description": "Prometheus text format",
                             "content": {"text/plain": {"schema": {"type": "string"}}}}})
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
