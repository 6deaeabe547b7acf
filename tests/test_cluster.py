"""Two service processes on a three-master Redis Cluster agree on matches, clicks, budgets and
reports; page analysis works there as on one server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from matching.analyze import make_page
from matching.encoder import default_encoder
from matching.semantic import page_vector
from service.analysis.profiles import ProfileStore
from service.analysis.queue import AnalysisQueue, ensure_group, read_backlog
from service.analysis.worker import Analyzer, WorkerOptions
from service.store.redis_conn import open_async
from tests.servers import admatch, redis_cluster, service_process, wait_for

ADMIN = "cluster-admin-key"
BROWSER = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36"}
PAGE = {"title": "楼市新政", "text": "本市新开楼盘首付两成，房贷利率下调，购房者关注学区房和二手房。"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    with redis_cluster(tmp_path_factory.mktemp("cluster")) as ports:
        yield ports


def test_two_replicas_on_a_cluster_agree(cluster: list[int], tmp_path: Path) -> None:
    """Matches, clicks, budget exhaustion and reports agree across two replicas on a cluster."""
    env = {"ADMATCH_REDIS_URL": f"redis://127.0.0.1:{cluster[0]}", "ADMATCH_REDIS_CLUSTER": "true",
           "ADMATCH_INDEX_DIR": str(tmp_path / "index"), "ADMATCH_ADMIN_KEY": ADMIN,
           "ADMATCH_CLICK_MIN_DELAY_SECONDS": "0", "ADMATCH_CLICKS_PER_MINUTE": "10000",
           "ADMATCH_CLICKS_PER_HOUR": "10000", "ADMATCH_INDEX_POLL_SECONDS": "0.2"}
    with service_process({**env, "ADMATCH_DATA_DIR": str(tmp_path / "a")}) as a, \
            service_process({**env, "ADMATCH_DATA_DIR": str(tmp_path / "b")}) as b:
        pub = httpx.post(a + "/v1/publishers", headers=bearer(ADMIN), json={"name": "站点", "floor_fen": 5}).json()
        adv = httpx.post(b + "/v1/advertisers", headers=bearer(ADMIN), json={"name": "房产"}).json()
        cmp = httpx.post(a + "/v1/campaigns", headers=bearer(adv["api_key"]),
                         json={"name": "楼盘", "daily_budget_fen": 1000, "total_budget_fen": 5000}).json()
        for title, kws, bid in [("学区房新盘", ["楼盘", "学区房", "首付"], 300), ("二手房", ["二手房", "房贷"], 200)]:
            r = httpx.post(b + f"/v1/campaigns/{cmp['id']}/ads", headers=bearer(adv["api_key"]),
                           json={"title": title, "landing_url": "https://example.com/h", "keywords": kws,
                                 "bid_fen": bid})
            assert r.status_code == 201, r.text
        built = admatch(["index", "build", "--quiet"], {**env, "ADMATCH_DATA_DIR": str(tmp_path / "c")})
        assert built.returncode == 0, built.stderr
        for base in (a, b):
            wait_for(lambda base=base: httpx.get(base + "/readyz").status_code == 200, "replica not ready")

        def match(base: str, page: dict = PAGE) -> dict:
            r = httpx.post(base + "/v1/match", headers=bearer(pub["api_key"]),
                           json={"publisher_id": pub["id"], "page": page, "slots": 2})
            assert r.status_code == 200, r.text
            return r.json()

        first_a, first_b = match(a), match(b)
        assert [x["ad_id"] for x in first_a["ads"]] == [x["ad_id"] for x in first_b["ads"]]
        assert first_a["ads"], "a relevant page gets ads"

        charged = 0
        for i in range(40):  # clicks alternate between replicas until the daily budget is spent
            res = match(a if i % 2 else b)
            if not res["ads"]:
                break
            ad = res["ads"][0]
            r = httpx.get(ad["click_url"].replace(a, b) if i % 2 else ad["click_url"], headers=BROWSER)
            assert r.status_code == 302
            charged += ad["price_fen"]
        # within one second of the budget running out, neither replica shows the campaign
        time.sleep(1.0)
        assert match(a)["ads"] == [] and match(b)["ads"] == []
        time.sleep(0.5)  # each replica's impression counts reach Redis within its flush interval (1 s)

        reports = [httpx.get(base + f"/v1/reports/campaigns/{cmp['id']}", headers=bearer(adv["api_key"])).json()
                   for base in (a, b)]
        assert reports[0]["totals"] == reports[1]["totals"]
        spend = reports[0]["totals"]["spend_fen"]
        assert 0 < spend <= 1000
        pub_report = httpx.get(a + f"/v1/reports/publishers/{pub['id']}", headers=bearer(pub["api_key"])).json()
        assert pub_report["totals"]["spend_fen"] == spend
        assert pub_report["totals"]["clicks"] == reports[0]["totals"]["clicks"]
        verified = admatch(["ledger", "verify"], {**env, "ADMATCH_DATA_DIR": str(tmp_path / "c")})
        assert verified.returncode == 0, verified.stdout + verified.stderr

        # a keyword set created through one replica serves on both within a second, no rebuild
        sea = {"title": "海景公寓", "text": "这套海景公寓面朝大海，度假公寓配套齐全，适合海边度假。"}
        assert match(a, sea)["ads"] == []
        cmp2 = httpx.post(b + "/v1/campaigns", headers=bearer(adv["api_key"]), json={"name": "海景"}).json()
        new = httpx.post(b + f"/v1/campaigns/{cmp2['id']}/ads", headers=bearer(adv["api_key"]),
                         json={"title": "海景公寓", "landing_url": "https://example.com/s",
                               "keywords": ["海景公寓", "度假公寓"], "bid_fen": 100})
        assert new.status_code == 201, new.text
        time.sleep(1.0)
        assert [x["ad_id"] for x in match(a, sea)["ads"]] == [new.json()["id"]]
        assert [x["ad_id"] for x in match(b, sea)["ads"]] == [new.json()["id"]]


def test_pages_are_queued_analysed_and_read_back_on_a_cluster(cluster: list[int]) -> None:
    """On a cluster, offered pages are queued once, analysed by a worker and their profiles read by another client."""
    url = f"redis://127.0.0.1:{cluster[0]}"
    page = make_page(title=PAGE["title"], text=PAGE["text"])
    enc = default_encoder()

    async def go() -> tuple[list[str], object, np.ndarray | None]:
        r = open_async(url, cluster=True)
        rb = open_async(url, cluster=True, decode=False)
        try:
            await ensure_group(r)
            q = AnalysisQueue(r, max_length=100, dedupe_s=60)
            q.offer("cluster-page", page)
            q.offer("cluster-page", page)
            assert (await q.flush()).queued == 1
            a = Analyzer(rb, ProfileStore(rb, enc.name, dim=enc.dim, ttl_s=60), enc,
                         WorkerOptions(consumer="c", block_s=0.2))
            done = await a.step()
            assert await a.step() is None
            other = open_async(url, cluster=True, decode=False)
            try:
                profile = await ProfileStore(other, enc.name, dim=enc.dim, ttl_s=60).get("cluster-page")
            finally:
                await other.aclose()
            return [x.page_key for x in done or []], await read_backlog(r), profile
        finally:
            await r.aclose()
            await rb.aclose()

    analysed, backlog, profile = asyncio.run(go())
    assert analysed == ["cluster-page"]
    assert (backlog.length, backlog.pending) == (0, 0)  # type: ignore[attr-defined]
    assert profile is not None and float(profile @ page_vector(page, enc)) > 0.999
