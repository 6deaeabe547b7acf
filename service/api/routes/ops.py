"""Ops endpoints: liveness, readiness, index status and reload."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from matching.categories import load_taxonomy
from service.api.routes import ctx
from service.api.schemas import AnalysisBacklog, IndexStatus
from service.auth import Admin, metrics_reader

router = APIRouter(tags=["ops"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz",
            summary="Readiness: index loaded and Redis reachable (ready), or serving without Redis (degraded)",
            description="200 `ready`; 200 `degraded` while Redis is unavailable: matches are answered from the "
                        "loaded index and the last known budgets, clicks redirected and spooled to disk (keep "
                        "the process in rotation: every replica shares the outage); 503 `not_ready` until an "
                        "index is loaded.",
            responses={503: {"description": "not ready", "content": {"application/json": {"example": {
                "status": "not_ready", "index_loaded": False, "redis": True}}}}})
async def readyz(request: Request) -> JSONResponse:
    c = ctx(request)
    try:
        redis_ok = bool(await c.redis.ping())
    except Exception:
        redis_ok = False
    loaded = c.index.snapshot is not None
    status = "not_ready" if not loaded else "ready" if redis_ok else "degraded"
    body: dict[str, Any] = {"status": status, "index_loaded": loaded, "redis": redis_ok}
    if c.breaker is not None:
        body["redis_circuit"] = c.breaker.state.value
    if c.spool is not None:
        body["spooled_clicks"] = c.spool.count()
    if c.index.last_error:
        body["index_error"] = c.index.last_error
    return JSONResponse(body, status_code=200 if loaded else 503)


async def index_status(request: Request) -> IndexStatus:
    c = ctx(request)
    holder = c.index
    backlog = await c.analysis.backlog() if c.analysis is not None else None
    analysis = AnalysisBacklog(**dataclasses.asdict(backlog)) if backlog is not None else None
    snap = holder.snapshot
    if snap is None:
        return IndexStatus(loaded=False, version=None, ad_count=0, built_at=None, analysis=analysis)
    m = snap.manifest
    return IndexStatus(loaded=True, version=m.version, ad_count=m.ad_count, built_at=m.built_at,
                       dense_dim=m.dense_dim, faiss_index=m.faiss_index,
                       live_changes=holder.live_changes, change_log_position=holder.position,
                       analysis=analysis)


@router.get("/v1/categories", summary="The IAB Content Taxonomy 3.1 nodes admatch classifies into")
async def categories() -> list[dict[str, Any]]:
    return [{"id": c.id, "name": c.name, "name_zh": c.name_zh, "tier": c.tier, "parent": c.parent,
             "sensitive": c.sensitive} for c in load_taxonomy()]


@router.get("/v1/index/status", summary="The serving index (version, ad count, build time) and the "
            "page-analysis backlog")
async def get_index_status(request: Request) -> IndexStatus:
    return await index_status(request)


@router.post("/v1/index/reload", summary="Load the newest published index now (admin)")
async def reload_index(request: Request, _: Admin) -> IndexStatus:
    await ctx(request).index.refresh()
    return await index_status(request)


@router.get("/metrics", summary="Prometheus metrics of this process (admin or metrics key)",
            response_class=Response, dependencies=[Depends(metrics_reader)],
            responses={401: {"description": "no key, or one that does not read metrics "
                                            "(unless ADMATCH_METRICS_PUBLIC=true)"}})
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
