"""Helpers for the HTTP tests: creating tenants and ads through the API, polling, error checks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
from fastapi.testclient import TestClient

from service.app import open_redis
from service.settings import Settings
from service.store.catalog import CatalogStore
from tests.conftest import ADMIN_KEY, auth

T = TypeVar("T")
ADMIN = auth(ADMIN_KEY)
TELECOM_PAGE = {"title": "3G手机资费新政", "text": "3G 手机长话、市话、漫游一个价，运营商推出新的手机套餐。"}
REALTY_PAGE = {"title": "新盘入市", "text": "城东楼盘集中开盘，首付两成，房贷利率下调，公积金贷款更划算。"}


def new_advertiser(client: TestClient, name: str = "长联通信") -> tuple[str, dict[str, str]]:
    """Create an advertiser as admin; returns its id and auth headers."""
    r = client.post("/v1/advertisers", json={"name": name}, headers=ADMIN)
    assert r.status_code == 201, r.text
    return r.json()["id"], auth(r.json()["api_key"])


def new_publisher(client: TestClient, name: str = "新闻早知道", **extra: Any) -> tuple[str, dict[str, str]]:
    """Create a publisher as admin; returns its id and auth headers."""
    r = client.post("/v1/publishers", json={"name": name, **extra}, headers=ADMIN)
    assert r.status_code == 201, r.text
    return r.json()["id"], auth(r.json()["api_key"])


def new_campaign(client: TestClient, headers: dict[str, str], name: str = "春季推广", **extra: Any) -> str:
    r = client.post("/v1/campaigns", json={"name": name, **extra}, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def ad_body(**overrides: Any) -> dict[str, Any]:
    """A valid telecom ad; keyword arguments replace fields."""
    body: dict[str, Any] = {
        "title": "3G手机套餐 长话市话漫游一个价", "description": "全国通话不分长市漫，月租低至18元",
        "landing_url": "https://example.com/plan", "keywords": ["手机套餐", "长话", "市话", "漫游", "3g"],
        "bid_fen": 120,
    }
    body.update(overrides)
    return body


REALTY_AD = ad_body(title="滨江府开盘 首付20%起", description="地铁口精装新房，公积金贷款可用",
                    landing_url="https://example.com/house", keywords=["楼盘", "首付", "房贷", "公积金", "开盘"],
                    bid_fen=300)


def new_ad(client: TestClient, headers: dict[str, str], campaign_id: str, **overrides: Any) -> dict[str, Any]:
    r = client.post(f"/v1/campaigns/{campaign_id}/ads", json=ad_body(**overrides), headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def match(client: TestClient, headers: dict[str, str], publisher_id: str, page: dict[str, Any],
          slots: int = 3) -> httpx.Response:
    return client.post("/v1/match", json={"publisher_id": publisher_id, "page": page, "slots": slots},
                       headers=headers)


def matched_ids(client: TestClient, headers: dict[str, str], publisher_id: str, page: dict[str, Any],
                slots: int = 3) -> list[str]:
    r = match(client, headers, publisher_id, page, slots)
    assert r.status_code == 200, r.text
    return [a["ad_id"] for a in r.json()["ads"]]


def reload_index(client: TestClient) -> dict[str, Any]:
    """Ask the app to load the newest published index now; returns the index status."""
    r = client.post("/v1/index/reload", headers=ADMIN)
    assert r.status_code == 200, r.text
    return dict(r.json())


def wait_for(probe: Callable[[], T], until: Callable[[T], bool], timeout: float) -> T:
    """Call ``probe`` until ``until(result)`` holds or ``timeout`` seconds pass; returns the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if until(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def with_store(settings: Settings, fn: Callable[[CatalogStore], Awaitable[T]]) -> T:
    """Run ``fn`` against the catalog in the test Redis (outside the app)."""
    async def go() -> T:
        r = open_redis(settings.redis_url or "", False)
        try:
            return await fn(CatalogStore(r))
        finally:
            await r.aclose()
    return asyncio.run(go())


def assert_error(r: httpx.Response, status: int, *, field: str | None = None, code: str | None = None) -> dict[str, Any]:
    """A JSON error body {"error", "detail", ...} with ``status``; ``field`` must be named in it."""
    assert r.status_code == status, f"{r.status_code} {r.text}"
    assert r.headers["content-type"].startswith("application/json"), r.headers["content-type"]
    body = r.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("detail"), str) and body["detail"], body
    if code is not None:
        assert body["error"] == code, body
    if field is not None:
        named = [f["field"] for f in body.get("fields", [])]
        assert field in body["detail"] or any(field in n for n in named), body
    return dict(body)
