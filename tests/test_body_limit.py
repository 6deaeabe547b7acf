"""Request bodies are bounded before routing, authentication and parsing: per-route limits, a 413
in the service's error format, and no memory spent on a huge body (measured on a real server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from service.api.body_limit import JSON_OVERHEAD, BodyLimits
from service.app import create_app
from service.settings import Settings
from service.store.catalog import CatalogStore
from tests.conftest import auth
from tests.helpers import assert_error, new_advertiser, new_campaign, with_store
from tests.servers import served

MB = 1 << 20


def chunks(total: int, size: int = MB) -> Iterator[bytes]:
    """``total`` bytes in chunks (httpx sends a generator chunked, without a Content-Length)."""
    block = b"x" * size
    for _ in range(total // size):
        yield block


def test_limits_follow_the_route_and_the_settings() -> None:
    """The match (and page preview) limit is derived from the page limit, the CSV upload has its own, the
    rest the default."""
    s = Settings(max_page_bytes=10_000, max_csv_bytes=5 * MB, max_body_bytes=4096, _env_file=None)  # type: ignore[call-arg]
    limits = BodyLimits.of(s)
    assert limits.limit("POST", "/v1/match")[0] == 20_000 + JSON_OVERHEAD
    assert limits.limit("POST", "/v1/preview")[0] == 20_000 + JSON_OVERHEAD
    assert limits.limit("POST", "/v1/campaigns/cmp_1/ads/csv")[0] == 5 * MB
    assert limits.limit("POST", "/v1/campaigns/cmp_1/ads")[0] == 4096
    assert limits.limit("GET", "/v1/match")[0] == 4096


@pytest.fixture
def small_limits(settings: Settings) -> Iterator[TestClient]:
    s = settings.model_copy(update={"max_page_bytes": 1_000, "max_csv_bytes": 8_192, "max_body_bytes": 200_000})
    with TestClient(create_app(s)) as c:
        yield c


def test_an_oversized_declared_body_is_refused_before_authentication(small_limits: TestClient) -> None:
    """A match body with a Content-Length over the limit gets 413, not the 401 its missing key would get."""
    r = small_limits.post("/v1/match", content=b"{" + b" " * 100_000 + b"}",
                          headers={"Content-Type": "application/json"})
    body = assert_error(r, 413, code="payload_too_large")
    assert "67536-byte limit of POST /v1/match" in body["detail"], body


def test_an_oversized_streamed_body_is_refused_while_it_streams(small_limits: TestClient) -> None:
    """A chunked match body without a length is cut off at the limit with the same 413."""
    r = small_limits.post("/v1/match", content=chunks(MB, 16_384), headers={"Content-Type": "application/json"})
    assert_error(r, 413, code="payload_too_large")


def test_the_same_body_fits_a_route_with_a_larger_limit(small_limits: TestClient) -> None:
    """A 100 kB body refused by the match route reaches the campaign route (limit 200 kB) and its 401."""
    r = small_limits.post("/v1/campaigns", content=b"{" + b" " * 100_000 + b"}",
                          headers={"Content-Type": "application/json"})
    assert_error(r, 401)


def test_a_streamed_csv_over_its_limit_is_refused(small_limits: TestClient) -> None:
    """A CSV upload streamed past ADMATCH_MAX_CSV_BYTES gets 413 and creates nothing."""
    _, h = new_advertiser(small_limits)
    cid = new_campaign(small_limits, h)
    r = small_limits.post(f"/v1/campaigns/{cid}/ads/csv", content=chunks(64_000, 4_000),
                          headers={**h, "Content-Type": "text/csv"})
    assert_error(r, 413, code="payload_too_large")
    assert small_limits.get(f"/v1/campaigns/{cid}/ads", headers=h).json() == []


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_100_mb_bodies_cost_a_real_server_no_memory(redis_url: str, settings: Settings, tmp_path: Path) -> None:
    """A real `admatch serve` answers 100 MB match bodies (declared or streamed, with and without a key) with 413 and grows by under 10 MB."""
    async def publisher(store: CatalogStore) -> str:
        return (await store.create_publisher("新闻早知道", 10, id="pub-big"))[1]
    key = with_store(settings, publisher)
    env = {"ADMATCH_REDIS_URL": redis_url, "ADMATCH_DATA_DIR": str(tmp_path / "data")}
    with served(env) as (base, proc), httpx.Client(base_url=base, timeout=30) as http:
        json_type = {"Content-Type": "application/json"}
        assert http.post("/v1/match", json={}, headers=auth(key)).status_code == 422  # warm the request path
        before = rss_kb(proc.pid)
        sends = [({**json_type, "Content-Length": str(100 * MB)}, "no key, declared"),
                 ({**json_type, **auth(key), "Content-Length": str(100 * MB)}, "publisher key, declared"),
                 (json_type, "no key, streamed"),
                 ({**json_type, **auth(key)}, "publisher key, streamed")]
        for headers, what in sends:
            r = http.post("/v1/match", content=chunks(100 * MB), headers=headers)
            assert r.status_code == 413, (what, r.status_code, r.text)
            assert r.json()["error"] == "payload_too_large", what
        grown_kb = rss_kb(proc.pid) - before
        assert grown_kb < 10 * 1024, f"server RSS grew by {grown_kb} kB"
