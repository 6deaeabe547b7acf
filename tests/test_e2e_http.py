"""End to end over real HTTP: the `admatch serve` process, the demo catalog, a match request."""

from __future__ import annotations

from pathlib import Path

import httpx
import redis

from service.demo.loader import DEMO_PUBLISHER_KEY, load_demo
from service.serving.indexing import build_from_catalog
from service.settings import Settings
from service.store.catalog import CatalogStore
from tests.helpers import with_store
from tests.servers import service_process, wait_for

START_TIMEOUT = 60.0  # generous: start-up loads the index, and CI machines are shared


def test_served_process_matches_a_telecom_page_to_a_telecom_ad(redis_url: str, clean_redis: redis.Redis,
                                                               tmp_path: Path) -> None:
    """A real `admatch serve` process over the demo catalog puts a telecom-plan ad first for a telecom page."""
    data_dir = tmp_path / "data"
    settings = Settings(redis_url=redis_url, data_dir=data_dir, index_dir=data_dir / "index",
                        _env_file=None)  # type: ignore[call-arg]

    async def prepare(store: CatalogStore) -> None:
        await load_demo(store)
        await build_from_catalog(store, settings.index_root)
    with_store(settings, prepare)

    env = {"ADMATCH_REDIS_URL": redis_url, "ADMATCH_DATA_DIR": str(data_dir),
           "ADMATCH_INDEX_DIR": str(settings.index_root), "ADMATCH_ADMIN_KEY": "e2e-admin-key"}
    with service_process(env) as base, httpx.Client(base_url=base, timeout=10.0) as http:
        wait_for(lambda: http.get("/readyz").status_code == 200, "server not ready", timeout=START_TIMEOUT)
        r = http.post("/v1/match", headers={"Authorization": f"Bearer {DEMO_PUBLISHER_KEY}"}, json={
            "publisher_id": "demo-news", "slots": 3,
            "page": {"title": "3G手机资费新政", "text": "3G 手机长话、市话、漫游一个价，运营商推出新套餐。"}})
        assert r.status_code == 200, r.text
        ads = r.json()["ads"]
        assert ads and ads[0]["campaign_id"] == "cmp-changlian-mobile", ads
