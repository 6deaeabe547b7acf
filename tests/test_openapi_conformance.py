"""Schemathesis against a real ``admatch serve`` process: generated requests (valid, boundary and
invalid) to every documented operation, with valid keys, on the demo catalog in a real embedded
Valkey. Any 5xx, any status, content type, header or body the OpenAPI document does not describe
fails the test.

Bounded: a fixed seed (``derandomize``) and a fixed number of examples per operation.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from service.demo.loader import DEMO_ADVERTISER_KEY_PREFIX, DEMO_PUBLISHER_KEY, demo_catalog, load_demo
from service.serving.indexing import build_from_catalog
from service.settings import Settings
from service.store.catalog import CatalogStore
from tests.helpers import with_store
from tests.servers import service_process, wait_for

ADMIN_KEY = "conformance-admin-key"
ADVERTISER = "adv-huating-realty"
PUBLISHER = "demo-news"
EXAMPLES_PER_OPERATION = 50
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, unsupported_method, allow_header_conformance]


def _ids() -> tuple[list[str], list[str]]:
    """The demo advertiser's campaign and ad ids."""
    [adv] = [a for a in demo_catalog()["advertisers"] if a["id"] == ADVERTISER]
    return [c["id"] for c in adv["campaigns"]], [ad["id"] for c in adv["campaigns"] for ad in c["ads"]]


CAMPAIGNS, ADS = _ids()


@pytest.fixture
def api_schema(redis_url: str, clean_redis: redis.Redis, tmp_path: Path) -> Iterator[Any]:
    """The OpenAPI document of a running `admatch serve` over the demo catalog."""
    data_dir = tmp_path / "data"
    s = Settings(redis_url=redis_url, data_dir=data_dir, _env_file=None)  # type: ignore[call-arg]

    async def prepare(store: CatalogStore) -> None:
        await load_demo(store)
        await build_from_catalog(store, s.index_root)
    with_store(s, prepare)
    env = {"ADMATCH_REDIS_URL": redis_url, "ADMATCH_DATA_DIR": str(data_dir), "ADMATCH_ADMIN_KEY": ADMIN_KEY,
           "ADMATCH_PUBLIC_BASE_URL": "http://127.0.0.1"}
    with service_process(env) as base:
        wait_for(lambda: httpx.get(base + "/readyz").status_code == 200, "server not ready", timeout=60)
        yield schemathesis.openapi.from_url(base + "/openapi.json")


def key_for(case: Any) -> str:
    """The key of the role the operation is for (admin, advertiser or publisher)."""
    path, tags = case.operation.path, set(case.operation.tags or ())
    if "admin" in tags or path == "/v1/index/reload":
        return ADMIN_KEY
    if path == "/v1/match" or path.startswith("/v1/reports/publishers"):
        return DEMO_PUBLISHER_KEY
    return DEMO_ADVERTISER_KEY_PREFIX + ADVERTISER


def _pick(options: list[str], generated: object) -> str:
    return options[zlib.crc32(repr(generated).encode()) % len(options)]


def aim_at_real_data(case: Any) -> None:
    """Point half of the generated ids at the demo's own campaigns, ads and publisher, so requests
    reach past the 404 into the handlers (deletes keep their random ids: the catalog stays)."""
    params = case.path_parameters or {}
    if case.method.upper() == "DELETE" or zlib.crc32(repr(params).encode()) % 2:
        return
    if "campaign_id" in params:
        params["campaign_id"] = _pick(CAMPAIGNS, params["campaign_id"])
    if "ad_id" in params:
        params["ad_id"] = _pick(ADS, params["ad_id"])
    if "publisher_id" in params:
        params["publisher_id"] = PUBLISHER
    if case.operation.path == "/v1/match" and isinstance(case.body, dict) and "publisher_id" in case.body:
        case.body["publisher_id"] = PUBLISHER


# The CSV upload's body is a string (the file); send it as its UTF-8 bytes, as text/plain is sent.
schemathesis.serializer.alias("text/csv", "text/plain")
schemathesis.serializer.alias("application/csv", "text/plain")

schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_every_response_is_one_the_openapi_document_describes(case: Any) -> None:
    """Every generated request gets a non-5xx response whose status, content type, headers and body the OpenAPI document describes."""
    aim_at_real_data(case)
    case.call_and_validate(headers={"Authorization": f"Bearer {key_for(case)}"}, checks=CHECKS,
                           allow_redirects=False, timeout=30)
