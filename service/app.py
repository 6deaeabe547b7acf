"""The app factory: ``create_app(settings)`` with a lifespan that opens Redis (embedded when
no URL is set), loads the index, warms jieba and starts the refresh loops."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, cast

import faiss
import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import Match
from threadpoolctl import threadpool_limits

from matching.brand import AdCategories
from matching.categories import CategoryClassifier
from matching.conversions import CvrPrior
from matching.ctr import CtrConfig
from matching.encoder import SentenceEncoder, default_encoder
from matching.matcher import MatchConfig
from service import console, metrics
from service.analysis.serving import start_analysis
from service.analysis.understanding import PageUnderstanding
from service.api import openapi
from service.api.body_limit import BodyLimit, BodyLimits
from service.api.routes import (
    admin,
    ads,
    campaigns,
    click,
    conversions,
    demo,
    match,
    me,
    ops,
    preview,
    reports,
    sites,
    tag,
)
from service.billing.billing import Billing, Clock
from service.billing.click_flow import ClickJob, PendingClick, RateLimits
from service.billing.clicks import ClickSigner
from service.billing.pseudonyms import Pseudonyms
from service.context import AppContext
from service.conversions.rates import ConversionRates
from service.conversions.recorder import Conversions
from service.ctr.log import ImpressionLog
from service.ctr.serving import CtrServing
from service.ctr.stats import CtrStats
from service.errors import AdmatchError, Unavailable
from service.openrtb import routes as openrtb_routes
from service.openrtb.serving import start_openrtb
from service.resilience.backoff import LoopHealth
from service.resilience.breaker import CircuitBreaker
from service.resilience.redis_guard import STORE_DOWN, Timeouts, breaker_for, close_client, open_client
from service.resilience.spool import ClickSpool
from service.serving.ad_vectors import AdVectors
from service.serving.blocked import BlockedCache
from service.serving.catalog_feed import CatalogFeed
from service.serving.index_holder import IndexHolder
from service.serving.page_cache import PageCache
from service.serving.url_pages import UrlPages
from service.settings import Settings
from service.store import keys
from service.store.catalog import CatalogStore
from service.store.redis_conn import attach_or_start, stop_embedded
from service.tag.sites import SiteStore
from service.tag.views import Views

log = logging.getLogger(__name__)

DESCRIPTION = """
admatch reads a publisher's article (Simplified or Traditional Chinese, text or HTML), finds the
ads whose advertisers' keywords fit it, and returns the best ones for the page's ad slots.

Keys: an **admin** key (from settings) creates advertisers and publishers; an **advertiser** key
manages its own campaigns and ads; a **publisher** key calls `/v1/match` for its own id.
Send keys as `Authorization: Bearer <key>`. Money is integer fen (分).
"""


def open_redis(url: str, cluster: bool, timeouts: Timeouts | None = None,
               breaker: CircuitBreaker | None = None) -> aioredis.Redis:
    """A client for ``url``: bounded by ``timeouts`` (default: those of command-line tools) and,
    given a ``breaker``, failing fast while Redis is unavailable (service/resilience/redis_guard.py)."""
    return open_client(url, cluster=cluster, timeouts=timeouts or Timeouts.batch(), breaker=breaker)


async def click_keys(settings: Settings, r: aioredis.Redis) -> list[str]:
    """Configured click-signing keys, or one generated once and shared through Redis by every
    worker and replica."""
    if settings.click_secret_keys:
        return [k.get_secret_value() for k in settings.click_secret_keys]
    await r.set(keys.CLICK_SECRET, secrets.token_urlsafe(32), nx=True)
    # Set just above (NX, no expiry), so it exists; the client decodes replies to str.
    return [cast(str, await r.get(keys.CLICK_SECRET))]


async def pseudonym_secret(settings: Settings, r: aioredis.Redis) -> bytes:
    """The configured pseudonym secret, or one generated once and shared through Redis."""
    if settings.pseudonym_secret is not None:
        return settings.pseudonym_secret.get_secret_value().encode("utf-8")
    await r.set(keys.PSEUDONYM_SECRET, secrets.token_urlsafe(32), nx=True)
    return cast(str, await r.get(keys.PSEUDONYM_SECRET)).encode("utf-8")


async def flush_impressions(billing: Billing, interval: float, implog: ImpressionLog | None = None) -> None:
    """Write this process's gathered impression counts (and impression-log entries) every
    ``interval`` seconds; counts that could not be written (Redis away) are kept for the next
    round (Billing.flush)."""
    health = LoopHealth("impression flush", interval, log)
    delay = interval
    while True:
        await asyncio.sleep(delay)
        try:
            await billing.flush()
        except Exception as e:
            delay = health.failed(e)
        else:
            delay = health.ok()
        if implog is not None:
            await implog.flush()  # never raises: a failed write drops its entries (logged)


async def load_encoder(encoder: SentenceEncoder) -> None:
    """Load the sentence encoder in a thread (about 1 s), so no request waits for it."""
    load = getattr(encoder, "load", None)
    if load is not None:
        try:
            await asyncio.to_thread(load)
        except Exception:  # encoded on first use instead (uploads), or queued (pages)
            log.exception("could not load the sentence encoder")


def serving_threads() -> None:
    """Thread settings of a serving process (the benchmark's in-process phase applies them too).

    One request searches a small query batch: FAISS's OpenMP threads only contend with each
    other and with the event loop (measured: 10k ads, p50 67 ms with 2 threads, 0.7 ms with 1)."""
    faiss.omp_set_num_threads(1)
    # Likewise numpy's BLAS on a request's small products: its second thread spins for nothing.
    threadpool_limits(1, user_api="blas")


# How long shutdown waits for the background loops to end once cancelled.
STOP_GRACE_S = 5.0


async def stop_tasks(tasks: list[asyncio.Task[None]], grace_s: float) -> None:
    """Cancel ``tasks`` and wait at most ``grace_s`` for them: a task that does not stop (a
    client library that swallows the cancellation) is logged, never waited on forever."""
    for t in tasks:
        t.cancel()
    if not tasks:
        return
    _done, pending = await asyncio.wait(tasks, timeout=grace_s)
    for t in pending:
        log.error("background task %s did not stop within %.0f s of being cancelled", t.get_name(), grace_s)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        serving_threads()
        embedded = None
        if settings.redis_url is None:
            url, embedded = await asyncio.to_thread(attach_or_start, settings.data_dir,
                                                    settings.embedded_appendfsync)
        else:
            url = settings.redis_url
        breaker = breaker_for(settings)
        r = open_redis(url, settings.redis_cluster, Timeouts.serving(settings), breaker)
        await r.ping()
        catalog = CatalogStore(r)
        vectors = AdVectors(r, default_encoder()) if settings.semantic else None
        holder = IndexHolder(settings.index_root, MatchConfig(floor=settings.relevance_floor), vectors)
        clock = Clock(settings.timezone)
        billing = Billing(r, clock, click_window_s=settings.click_window_seconds,
                          buffered=settings.impression_flush_seconds > 0,
                          pseudonyms=Pseudonyms(await pseudonym_secret(settings, r)),
                          ctr_ttl_s=(settings.ctr_window_days + 2) * 86400,
                          attribution_window_s=settings.attribution_window_seconds)
        implog = ImpressionLog(r, settings.impression_log_maxlen, buffered=billing.buffered)
        ctr_stats = CtrStats(r, clock, config=CtrConfig(exploration=settings.ctr_exploration),
                             window_days=settings.ctr_window_days)
        ctx = AppContext(settings=settings, redis=r, catalog=catalog, index=holder,
                         blocked=BlockedCache(catalog), billing=billing,
                         signer=ClickSigner(await click_keys(settings, r)),
                         page_cache=PageCache(r if settings.page_cache_shared else None,
                                              local_size=settings.page_cache_size,
                                              ttl_s=settings.page_cache_ttl_seconds),
                         ad_vectors=vectors, ctr=CtrServing(ctr_stats, implog, rank=settings.ctr_enabled),
                         sites=SiteStore(r), ad_categories=AdCategories(CategoryClassifier()),
                         views=Views(r, billing.clock, window_s=settings.click_window_seconds),
                         url_pages=UrlPages(r, ttl_s=settings.profile_ttl, local_size=settings.page_cache_size))
        feed = ctx.feed = CatalogFeed(catalog, holder, ctx.blocked)
        ctx.breaker, ctx.spool = breaker, ClickSpool(settings.spool_dir)
        ctx.conversions = Conversions(r, billing, window_s=settings.attribution_window_seconds)
        ctx.conversion_rates = ConversionRates(r, CvrPrior(settings.cvr_prior, settings.cvr_prior_clicks))
        limits = RateLimits(settings.clicks_per_minute, settings.clicks_per_hour)

        def decide(pending: PendingClick) -> Any:  # a spooled click, as the click route decides one
            return ClickJob(pending).run(billing, limits, implog)

        await holder.refresh()
        await feed.sync()
        # The feed follows Redis (catalog changes, announced versions); the CURRENT poll picks up
        # versions published without an announcement (artifact.save called directly).
        ctx.tasks = [asyncio.create_task(holder.poll(settings.index_poll_seconds), name="index-poll"),
                     asyncio.create_task(feed.run(settings.live_poll_seconds), name="catalog-feed")]
        ctx.tasks.append(asyncio.create_task(ctr_stats.run(settings.ctr_refresh_seconds), name="ctr-refresh"))
        ctx.tasks.append(asyncio.create_task(billing.states.run(), name="budget-state-refresh"))
        # Unbuffered (flush interval 0), the loop writes what a request could not (Redis away).
        ctx.tasks += [asyncio.create_task(flush_impressions(billing, settings.impression_flush_seconds or 1.0, implog),
                                          name="impression-flush"),
                      asyncio.create_task(ctx.spool.run(decide), name="click-spool")]
        analysis = await start_analysis(settings, url, r, breaker) if settings.analysis_enabled else None
        if analysis is not None:
            ctx.analysis, ctx.profiles = analysis.queue, analysis.profiles
            ctx.tasks.append(analysis.task)
            if vectors is not None:  # pages ranked with their vectors once known
                ctx.understanding = PageUnderstanding(analysis.queue, analysis.profiles, vectors.encoder,
                                                      inline_chars=settings.inline_analysis_chars,
                                                      tracked=settings.page_cache_size)
        if vectors is not None:  # loaded off the event loop: until then short pages are queued too
            ctx.tasks.append(asyncio.create_task(load_encoder(vectors.encoder), name="encoder-load"))
        openrtb, exchanges, openrtb_tasks = start_openrtb(ctx)
        app.state.openrtb = (openrtb, exchanges)
        ctx.tasks += openrtb_tasks
        app.state.ctx = ctx
        try:
            yield
        finally:
            await stop_tasks(ctx.tasks, STOP_GRACE_S)
            if analysis is not None:
                await analysis.close()  # the pages offered since the last flush
            try:
                await billing.flush()  # the last impressions counted in this process
            except STORE_DOWN as e:
                log.warning("the last impression counts of this process are lost: Redis unavailable (%s)", e)
            except Exception:
                log.exception("could not write the last impression counts")
            await implog.flush()
            await close_client(r)
            if embedded is not None:
                await asyncio.to_thread(stop_embedded, embedded, settings.data_dir)

    app = FastAPI(title="admatch", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.add_middleware(BodyLimit, limits=BodyLimits.of(settings))
    _install_error_handlers(app)
    _guard_hosts(app, settings)
    for module in (match, click, conversions, tag, sites, campaigns, ads, preview, reports, admin, me, ops):
        app.include_router(module.router)
    if settings.demo_pages:
        app.include_router(demo.router)
    app.include_router(openrtb_routes.router_for(settings))
    console.install(app)
    openapi.install(app)
    return app


def _guard_hosts(app: FastAPI, settings: Settings) -> None:
    """Refuse Host headers not in ADMATCH_ALLOWED_HOSTS (400), so no client picks the host of the
    click URLs built from the request; warn when click URLs follow the request's host."""
    if settings.allowed_hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
    if settings.public_base_url is None:
        log.warning("ADMATCH_PUBLIC_BASE_URL is unset: click URLs take their host from each request's Host "
                    "header%s; set it to this service's public URL",
                    "" if settings.allowed_hosts else " (any host: ADMATCH_ALLOWED_HOSTS is unset too)")


_NOT_JSON = "body is not valid UTF-8 JSON; send a UTF-8 encoded JSON object (Content-Type: application/json)"
_TOO_DEEP = ("body is JSON nested too deeply to read (Python's parser stops near 1,000 levels); "
             "send the object the endpoint documents, which nests a few levels at most")


def _unparsable_body(cause: BaseException | None) -> dict[str, Any]:
    """The 422 body for a body the JSON parser gave up on: too deep, or not UTF-8 JSON."""
    if isinstance(cause, RecursionError):
        return {"error": "invalid_request", "detail": _TOO_DEEP,
                "fields": [{"field": "body", "message": "nested too deeply"}]}
    return {"error": "invalid_request", "detail": _NOT_JSON,
            "fields": [{"field": "body", "message": "not UTF-8 JSON"}]}


_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """Every method some route serves at the request's path: Starlette's own 405 names only the
    first route whose path matched (GET /v1/ads/{id}, not its PATCH and DELETE). Asks each
    route whether it would take the request with each method (Starlette's ``matches``)."""
    routes = request.app.router.routes
    return ", ".join(m for m in _METHODS
                     if any(r.matches({**request.scope, "method": m})[0] == Match.FULL for r in routes))


def _field_name(loc: tuple[object, ...], err_type: str) -> str:
    if err_type == "json_invalid":  # loc holds a character offset, not a field
        return "body"
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _error(body: dict[str, Any], status: int, headers: Mapping[str, str] | None = None) -> JSONResponse:
    metrics.ERRORS.labels(str(status), str(body.get("error", ""))).inc()
    return JSONResponse(body, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AdmatchError)
    async def _admatch(_: Request, exc: AdmatchError) -> JSONResponse:
        return _error(exc.body(), exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = []
        for err in exc.errors():
            err_type = str(err.get("type", ""))
            field = _field_name(tuple(err.get("loc", ())), err_type)
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            if err_type == "extra_forbidden":
                msg = "unknown field; remove it (see /docs for the fields this endpoint takes)"
            elif err_type in ("json_invalid", "model_attributes_type") or "decode" in msg.lower():
                msg = f"{_NOT_JSON} ({msg})"
            fields.append({"field": field, "message": msg})
        detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return _error({"error": "invalid_request", "detail": detail, "fields": fields}, 422)

    @app.exception_handler(STORE_DOWN[0])
    @app.exception_handler(STORE_DOWN[1])
    async def _store_down(_: Request, exc: Exception) -> JSONResponse:
        err = Unavailable("Redis, where the catalog and the accounts live, is unavailable; this request "
                          "needs it. Matches and click redirects keep working; retry in a few seconds")
        return _error(err.body(), err.status, headers={"Retry-After": "2"})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and "parsing the body" in str(exc.detail):  # FastAPI's json.loads failed
            return _error(_unparsable_body(exc.__cause__), 422)
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "http_error")
        detail = str(exc.detail)
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
            detail = f"{request.method} is not served at {request.url.path}; use {headers['Allow']}"
        return _error({"error": code, "detail": detail}, exc.status_code, headers=headers or None)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return _error({"error": "internal", "detail": "unexpected server error; it has been logged"}, 500)
