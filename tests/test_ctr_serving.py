"""The click-through model in the service, against the real Redis: cells counted by impressions
and genuine clicks, the refreshed snapshot reordering the auction (GSP on predicted CTR), the
relevance gate, the impression log and its export.

One index (four ads) is built per module through the production build path; every test seeds
the same ids into an emptied database and runs an app of its own (no minimum click delay,
counts written per request, exploration off unless a test turns it on).
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import redis
import redis.asyncio as aioredis
from fastapi.testclient import TestClient

from matching.ctr import CellKey, band
from service.app import create_app
from service.billing.billing import Clock
from service.billing.clicks import _FIELDS, ClickClaim, _claim
from service.cli import export_log
from service.ctr import cells as ctr_cells
from service.ctr.log import ImpressionLog
from service.ctr.stats import CtrStats
from service.serving.indexing import build_from_catalog
from service.settings import Settings
from service.store import keys
from service.store.catalog import CatalogStore
from service.store.records import Status
from tests.conftest import ADMIN_KEY, auth

TZ = "Asia/Shanghai"
BROWSER = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                         "Chrome/124.0 Safari/537.36"}
PAGE = {"title": "3G手机资费新政", "text": "运营商推出3G手机套餐，长话、市话、漫游一个价，全国统一资费，流量更多。"}
COMMUNICATION = "80DV8O"  # the IAB category the classifier gives PAGE
PUB, PUB_KEY, ADV = "pub-news", "pub-key", "adv-tel"
TEL = {"title": "3G手机套餐 长话市话漫游一个价", "description": "全国通话不分长市漫",
       "keywords": ("手机套餐", "长话", "市话", "漫游", "3g")}
ADS = {
    # campaign, ad id, fields
    "ad-a": ("cmp-a", {**TEL, "bid_fen": 100}),
    "ad-b": ("cmp-b", {"title": "流量卡 漫游不限量", "description": "流量", "keywords": ("漫游", "流量"), "bid_fen": 100}),
    "ad-x": ("cmp-a", {**TEL, "title": "手机套餐 长话市话", "bid_fen": 1000, "exclude_categories": (COMMUNICATION,)}),
    "ad-far": ("cmp-b", {"title": "滨江府开盘 首付20%起", "description": "地铁口精装新房",
                         "keywords": ("楼盘", "首付", "房贷", "公积金"), "bid_fen": 1000}),
}


async def seed(r: aioredis.Redis) -> None:
    store = CatalogStore(r)
    await store.create_publisher("新闻网", 1, id=PUB, api_key=PUB_KEY)
    await store.create_advertiser("电信", id=ADV, api_key="adv-key")
    for cid in ("cmp-a", "cmp-b"):
        await store.create_campaign(ADV, name=cid, id=cid)
    for ad_id, (cid, fields) in ADS.items():
        await store.create_ads(ADV, cid, [{"id": ad_id, "landing_url": f"https://example.com/{ad_id}",
                                           "status": Status.ACTIVE, **fields}])


def run_seed(url: str) -> None:
    async def go() -> None:
        r = aioredis.from_url(url, decode_responses=True)
        try:
            await seed(r)
        finally:
            await r.aclose()
    asyncio.run(go())


@pytest.fixture(scope="module")
def index_dir(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("index")
    r = redis.Redis.from_url(redis_url)
    r.flushdb()
    run_seed(redis_url)

    async def build() -> None:
        ar = aioredis.from_url(redis_url, decode_responses=True)
        try:
            await build_from_catalog(CatalogStore(ar), root)
        finally:
            await ar.aclose()
    asyncio.run(build())
    r.flushdb()
    r.close()
    return root


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[redis.Redis]:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    r.flushdb()
    run_seed(redis_url)
    yield r
    r.flushdb()
    r.close()


def make_client(redis_url: str, data_dir: Path, index_dir: Path, **changes: Any) -> TestClient:
    fields: dict[str, Any] = {"index_poll_seconds": 0.2, "impression_flush_seconds": 0.0,
                              "click_min_delay_seconds": 0.0, "ctr_exploration": 0.0, **changes}
    s = Settings(redis_url=redis_url, data_dir=data_dir, index_dir=index_dir, admin_key=ADMIN_KEY,
                 _env_file=None, **fields)  # type: ignore[call-arg]
    return TestClient(create_app(s))


@pytest.fixture
def client(redis_url: str, index_dir: Path, tmp_path: Path, sync_redis: redis.Redis) -> Iterator[TestClient]:
    with make_client(redis_url, tmp_path, index_dir) as c:
        yield c


def match(client: TestClient, slots: int = 3, **extra: Any) -> dict[str, Any]:
    r = client.post("/v1/match", json={"publisher_id": PUB, "page": PAGE, "slots": slots, **extra},
                    headers=auth(PUB_KEY))
    assert r.status_code == 200, r.text
    return dict(r.json())


def click(client: TestClient, url: str, headers: dict[str, str] = BROWSER) -> None:
    r = client.get(urlparse(url).path, headers=headers, follow_redirects=False)
    assert r.status_code == 302, r.text


def today() -> str:
    return Clock(TZ).day(time.time())


def cell_fields(r: redis.Redis, cid: str, ad_id: str) -> dict[str, int]:
    """n/e/c summed over the ad's cells in today's hash of its campaign."""
    out = {"n": 0, "e": 0, "c": 0}
    for name, value in r.hgetall(keys.ctr_cells(cid, today())).items():
        parts = name.split(ctr_cells.SEP)
        if parts[0] == ad_id:
            out[parts[-1]] += int(value)
    return out


def put_history(r: redis.Redis, ad_id: str, *, impressions: int, clicks: int, score: float = 0.3,
                day: str | None = None) -> None:
    """Counts for one ad on PAGE's context, as the flush would have written them."""
    cid = ADS[ad_id][0]
    day = day or today()
    kw = "漫游"
    prefix = ctr_cells.field_prefix(CellKey(cid, ad_id, COMMUNICATION, kw, PUB, 0, band(score)))
    r.hset(keys.ctr_cells(cid, day), mapping={prefix + "n": impressions,
                                               prefix + "e": round(impressions * score * 1e6), prefix + "c": clicks})
    r.sadd(keys.ctr_campaigns(day), cid)


def refresh(client: TestClient) -> Any:
    ctr = client.app.state.ctx.ctr  # type: ignore[attr-defined]
    return client.portal.call(ctr.stats.refresh)  # type: ignore[union-attr]


# ---- counting --------------------------------------------------------------------------------------


def test_impressions_and_genuine_clicks_are_counted_in_their_cells(client, sync_redis):
    """Each ad shown adds an impression and its relevance to its cell; a reader's click adds a
    click there, a crawler's click on another impression does not."""
    body = match(client)
    shown = body["ads"]
    assert {a["ad_id"] for a in shown} >= {"ad-a", "ad-b"}
    for a in shown:
        got = cell_fields(sync_redis, a["campaign_id"], a["ad_id"])
        assert got["n"] == 1
        assert got["e"] == pytest.approx(a["score"] * 1e6, abs=100)
    assert sync_redis.sismember(keys.ctr_campaigns(today()), "cmp-a")
    assert 0 < sync_redis.ttl(keys.ctr_cells("cmp-a", today())) <= 16 * 86400
    first, second = shown[0], shown[1]
    click(client, first["click_url"])
    click(client, first["click_url"])  # a duplicate: not counted again
    click(client, second["click_url"], headers={"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"})
    assert cell_fields(sync_redis, first["campaign_id"], first["ad_id"])["c"] == 1
    assert cell_fields(sync_redis, second["campaign_id"], second["ad_id"])["c"] == 0


# ---- the auction -----------------------------------------------------------------------------------


def test_click_history_reorders_the_auction_and_gsp_prices_by_predicted_ctr(client, sync_redis):
    """With equal bids, the less relevant ad whose clicks show a higher click-through takes the top
    slot after a refresh, and the winner pays floor(bid_next × pCTR_next / pCTR_own) + 1."""
    before = match(client)["ads"]
    assert [a["ad_id"] for a in before][:2] == ["ad-a", "ad-b"]  # relevance order: nothing learned yet
    put_history(sync_redis, "ad-a", impressions=20_000, clicks=20)
    put_history(sync_redis, "ad-b", impressions=20_000, clicks=600)
    model = refresh(client)
    assert model.clicks == 620
    after = match(client)["ads"]
    assert [a["ad_id"] for a in after][:2] == ["ad-b", "ad-a"]
    b, a = after[0], after[1]
    qb, qa = b["explanation"]["quality"], a["explanation"]["quality"]
    assert qb > qa
    # the response rounds scores (4 places) and qualities (6): recompute from the model, within rounding
    m = model.page(PUB, COMMUNICATION)
    ads = client.app.state.ctx.index.snapshot.ads_by_id  # type: ignore[attr-defined]
    exact_b = m.quality(ads["ad-b"], b["matched_keywords"][0], b["score"])
    exact_a = m.quality(ads["ad-a"], a["matched_keywords"][0], a["score"])
    assert qb == pytest.approx(exact_b, rel=1e-3) and qa == pytest.approx(exact_a, rel=1e-3)
    expected = max(1, min(100, math.floor(100 * qa / qb) + 1))
    assert abs(b["price_fen"] - expected) <= 1  # the exact formula is tested in test_auction.py
    assert b["explanation"]["predicted_ctr"] == pytest.approx(qb, rel=1e-3)  # slot 0: π = 1
    assert a["explanation"]["predicted_ctr"] == pytest.approx(qa * model.position_factor(1), rel=1e-3)


def test_no_click_history_lifts_an_ad_past_the_relevance_gate(client, sync_redis):
    """An ad excluded from the page's category and one under the relevance floor never show,
    however many clicks they have had and however high they bid."""
    put_history(sync_redis, "ad-x", impressions=1_000, clicks=900)
    put_history(sync_redis, "ad-far", impressions=1_000, clicks=900)
    model = refresh(client)
    assert model.ads["ad-x"][0] > 100 * model.config.prior_ctr  # 90% clicks: a hundred times the prior
    for _ in range(20):
        shown = {a["ad_id"] for a in match(client, slots=4)["ads"]}
        assert shown and not shown & {"ad-x", "ad-far"}


def test_relevance_ranks_when_the_model_is_off(redis_url, index_dir, tmp_path, sync_redis):
    """ADMATCH_CTR_ENABLED=false: the quality term is the relevance score, and cells are still counted."""
    put_history(sync_redis, "ad-b", impressions=20_000, clicks=600)
    with make_client(redis_url, tmp_path, index_dir, ctr_enabled=False) as c:
        refresh(c)
        ads = match(c)["ads"]
        assert [a["ad_id"] for a in ads][:2] == ["ad-a", "ad-b"]
        for a in ads:
            assert a["explanation"]["quality"] == pytest.approx(a["score"], abs=1e-4)
        assert cell_fields(sync_redis, "cmp-a", "ad-a")["n"] == 1


def test_exploration_marks_its_auctions_and_stays_near_its_share(redis_url, index_dir, tmp_path, sync_redis):
    """At ADMATCH_CTR_EXPLORATION=0.1 about a tenth of 300 auctions explore (within 4 standard errors)."""
    with make_client(redis_url, tmp_path, index_dir, ctr_exploration=0.1, impression_log_maxlen=0) as c:
        explored = sum(match(c, slots=1)["ads"][0]["explanation"]["explored"] for _ in range(300))
    assert abs(explored / 300 - 0.1) <= 4 * math.sqrt(0.1 * 0.9 / 300)


# ---- the impression log ----------------------------------------------------------------------------


def test_impression_log_holds_impressions_and_clicks_without_user_data(client, sync_redis):
    """Every ad shown and every genuine click is logged (slot, categories, signals, price, pCTR)
    and exported as JSON Lines; the user key appears nowhere."""
    body = match(client, user_key="reader-7f3a9c")
    click(client, body["ads"][0]["click_url"])
    out = io.StringIO()

    async def export() -> tuple[int, str | None]:
        r = aioredis.from_url(client.app.state.ctx.settings.redis_url)  # type: ignore[attr-defined]
        try:
            return await export_log(r, out)
        finally:
            await r.aclose()
    n, last = asyncio.run(export())
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert n == len(lines) == len(body["ads"]) + 1 and last == lines[-1]["id"]
    imps = [x for x in lines if x["ev"] == "imp"]
    assert [x["ad"] for x in imps] == [a["ad_id"] for a in body["ads"]]
    assert [x["pos"] for x in imps] == list(range(len(imps)))
    first = imps[0]
    assert first["cats"][0][0] == COMMUNICATION and first["price"] == body["ads"][0]["price_fen"]
    assert set(first["sig"]) >= {"keyword", "tfidf", "category"} and first["pctr"] > 0 and first["x"] == 0
    clicks = [x for x in lines if x["ev"] == "click"]
    assert [(x["imp"], x["reason"]) for x in clicks] == [(body["ads"][0]["impression_id"], "valid")]
    text = out.getvalue()
    assert "reader-7f3a9c" not in text and "user" not in text


def test_impression_log_is_trimmed_to_about_its_maxlen(redis_url, sync_redis):
    """2,000 entries into a log of maxlen 100 leave at most a macro-node more than 100."""
    async def go() -> int:
        r = aioredis.from_url(redis_url)
        try:
            log = ImpressionLog(r, 100)
            for i in range(2000):
                log.append({"ev": "imp", "i": i})
            assert await log.flush() == 2000
            return int(await r.xlen(keys.IMPRESSION_LOG))
        finally:
            await r.aclose()
    assert 100 <= asyncio.run(go()) <= 200


# ---- tokens and the refresher ----------------------------------------------------------------------


def test_tokens_sealed_before_the_cell_context_still_open():
    """A claim without ``ctx`` (tokens issued before the model) still opens, with ctx None."""
    claim = ClickClaim(imp="i", ad="a", cmp="c", adv="v", pub="p", price=5, issued=1.0, url="u", user=None)
    values = [getattr(claim, f) for f in _FIELDS][:-1]
    assert _claim(values) == claim and _claim(values).ctx is None
    assert ctr_cells.cell_of_click("c", "a", "p", None) is None
    assert ctr_cells.cell_of_click("c", "a", "p", ctr_cells.context("T", "kw", 2, 3)) == \
        CellKey("c", "a", "T", "kw", "p", 2, 3)


def test_days_before_yesterday_are_read_once(redis_url, sync_redis):
    """A closed day's cells are kept after the first refresh; today's are read again every time."""
    now = time.time()
    clock = Clock(TZ)
    old = clock.day(now - 3 * 86400)
    put_history(sync_redis, "ad-a", impressions=500, clicks=5, day=old)
    put_history(sync_redis, "ad-b", impressions=500, clicks=5)

    async def go() -> tuple[Any, Any]:
        r = aioredis.from_url(redis_url, decode_responses=True)
        try:
            stats = CtrStats(r, clock, window_days=7)
            first = await stats.refresh(now)
            await r.delete(keys.ctr_cells("cmp-a", old), keys.ctr_cells("cmp-b", clock.day(now)))
            return first, await stats.refresh(now)
        finally:
            await r.aclose()
    first, second = asyncio.run(go())
    assert set(first.ads) == {"ad-a", "ad-b"}
    assert set(second.ads) == {"ad-a"}  # the old day from memory, today's deletion seen
