"""Clicks and reports through the HTTP API: /v1/match → click URL → 302, ledger and reports.

The index (one ad, built from the catalog by the production build path) is built once per
module, since building and loading one costs seconds of jieba start-up. Every test empties
Redis and seeds the same publisher, advertiser, campaign and ad ids with the budget, cap and
floor it needs. Most tests share one app with no minimum click delay and a known click key;
tests that need other click settings start their own app on the same index.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from fastapi.testclient import TestClient
from pydantic import SecretStr

from matching.click_rules import InvalidReason
from service.app import create_app
from service.billing.clicks import BadClickToken, ClickSigner
from service.serving.indexing import build_from_catalog
from service.settings import Settings
from service.store import keys
from service.store.catalog import CatalogStore
from service.store.records import Status
from tests.conftest import ADMIN_KEY, TEST_REDIS_TIMEOUT_MS, auth

BROWSER = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                         "Chrome/124.0 Safari/537.36"}
OLD_KEY, NEW_KEY = "click-key-2024-old", "click-key-2025-new"
PAGE = {"title": "3G手机资费新政", "text": "运营商推出3G手机套餐，长话、市话、漫游一个价，全国统一资费，流量更多。"}
AD = {"title": "3G手机套餐 长话市话漫游一个价", "description": "全国通话不分长市漫",
      "landing_url": "https://example.com/plan", "keywords": ["手机套餐", "长话", "市话", "漫游", "3g"]}
FAST = {"impression_flush_seconds": 0.0, "click_min_delay_seconds": 0.0, "click_secret_keys": [SecretStr(OLD_KEY)], "clicks_per_minute": 3}
PUB_ID, PUB_KEY, ADV_ID, ADV_KEY, CMP_ID, AD_ID = "pub-news", "pub-key", "adv-tel", "adv-key", "cmp-3g", "ad-3g"
BID_FEN = 120


async def seed(r: aioredis.Redis, *, floor_fen: int = 10, **campaign: Any) -> None:
    """One publisher, one advertiser with one campaign and its ad, with fixed ids (those of the shared index)."""
    store = CatalogStore(r)
    await store.create_publisher("新闻网", floor_fen, id=PUB_ID, api_key=PUB_KEY)
    await store.create_advertiser("电信", id=ADV_ID, api_key=ADV_KEY)
    await store.create_campaign(ADV_ID, name="3G推广", id=CMP_ID, **campaign)
    await store.create_ads(ADV_ID, CMP_ID, [{"id": AD_ID, **AD, "keywords": tuple(AD["keywords"]),
                                             "bid_fen": BID_FEN, "status": Status.ACTIVE}])


def run_seed(url: str, **kw: Any) -> None:
    async def go() -> None:
        r = aioredis.from_url(url, decode_responses=True)
        try:
            await seed(r, **kw)
        finally:
            await r.aclose()
    asyncio.run(go())


@pytest.fixture(scope="module")
def index_dir(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of the seeded ad, built once for the module through the production build path."""
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


def base_settings(redis_url: str, data_dir: Path, index_dir: Path, **changes: Any) -> Settings:
    return Settings(redis_url=redis_url, data_dir=data_dir, index_dir=index_dir, admin_key=ADMIN_KEY,
                    index_poll_seconds=0.2, _env_file=None,
                    **{"redis_timeout_ms": TEST_REDIS_TIMEOUT_MS, **changes})  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def fast_client(redis_url: str, index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app for the module with no minimum click delay and a known click key (its index loads once)."""
    s = base_settings(redis_url, tmp_path_factory.mktemp("data"), index_dir, **FAST)
    with TestClient(create_app(s)) as c:
        yield c


@pytest.fixture
def app(redis_url: str, index_dir: Path, tmp_path: Path) -> Callable[..., Any]:
    """A context manager running an app of its own on the shared index with some settings changed."""
    @contextmanager
    def make(**changes: Any) -> Iterator[TestClient]:
        with TestClient(create_app(base_settings(redis_url, tmp_path, index_dir, **changes))) as c:
            yield c
    return make


@dataclass
class World:
    client: TestClient
    pub_id: str = PUB_ID
    pub_key: str = PUB_KEY
    adv_key: str = ADV_KEY
    cmp_id: str = CMP_ID

    def match(self, **extra: Any) -> list[dict[str, Any]]:
        r = self.client.post("/v1/match", json={"publisher_id": self.pub_id, "page": PAGE, "slots": 3, **extra},
                             headers=auth(self.pub_key))
        assert r.status_code == 200, r.text
        return [a for a in r.json()["ads"] if a["campaign_id"] == self.cmp_id]

    def one_ad(self, **extra: Any) -> dict[str, Any]:
        [ad] = self.match(**extra)
        return ad

    def click(self, url: str, headers: dict[str, str] | None = None) -> Any:
        return self.client.get(url, headers=BROWSER if headers is None else headers, follow_redirects=False)

    def campaign_report(self, key: str | None = None, **params: str) -> Any:
        return self.client.get(f"/v1/reports/campaigns/{self.cmp_id}", params=params,
                               headers=auth(key or self.adv_key))

    def totals(self) -> dict[str, Any]:
        r = self.campaign_report()
        assert r.status_code == 200, r.text
        return r.json()["totals"]


@pytest.fixture
def world(redis_url: str, clean_redis: redis.Redis) -> Callable[..., World]:
    """Seeds an emptied Redis with the publisher, advertiser, campaign and ad, for a given client."""
    def make(client: TestClient, *, floor_fen: int = 10, **campaign: Any) -> World:
        run_seed(redis_url, floor_fen=floor_fen, **campaign)
        ctx = client.app.state.ctx  # the app outlives the Redis data it cached: forget it
        ctx.catalog.drop_cached()
        ctx.billing.drop_cached()
        ctx.feed.reset()
        return World(client)
    return make


def ledger_reasons(r: redis.Redis, cid: str) -> list[str]:
    return [f["reason"] for _id, f in r.xrange(keys.ledger(cid))]


def token_of(click_url: str) -> str:
    return click_url.rsplit("/", 1)[1]


# ---- match and click --------------------------------------------------------------------------

def test_match_returns_priced_ads_with_signed_click_urls(fast_client, world):
    """/v1/match returns the relevant ad with an auction price in fen and a click URL on this service."""
    w = world(fast_client, floor_fen=15)
    ad = w.one_ad()
    assert isinstance(ad["price_fen"], int) and 15 <= ad["price_fen"] <= BID_FEN
    assert ad["click_url"].startswith("http://testserver/v1/click/")
    claim = ClickSigner([OLD_KEY]).verify(token_of(ad["click_url"]))
    assert (claim.cmp, claim.price, claim.imp, claim.url) == \
        (w.cmp_id, ad["price_fen"], ad["impression_id"], AD["landing_url"])


def test_click_redirects_to_the_landing_page_and_charges_the_price(fast_client, world, clean_redis):
    """A browser following a click URL gets a 302 to the landing page and the campaign is charged the price once."""
    w = world(fast_client)
    ad = w.one_ad()
    r = w.click(ad["click_url"])
    assert r.status_code == 302
    # the landing page gets its click id, for conversions
    assert r.headers["location"] == f"{AD['landing_url']}?admatch_click={ad['impression_id']}.{CMP_ID}"
    assert r.headers["cache-control"] == "no-store"
    t = w.totals()
    assert (t["impressions"], t["clicks"], t["spend_fen"], t["invalid_total"]) == (1, 1, ad["price_fen"], 0)
    assert ledger_reasons(clean_redis, w.cmp_id) == ["valid"]


def test_clicking_twice_redirects_twice_but_charges_once(fast_client, world):
    """A second click on the same ad link still redirects and is reported as a duplicate, not a charge."""
    w = world(fast_client)
    ad = w.one_ad()
    assert [w.click(ad["click_url"]).status_code for _ in range(2)] == [302, 302]
    t = w.totals()
    assert (t["clicks"], t["spend_fen"], t["invalid_clicks"]) == (1, ad["price_fen"], {"duplicate": 1})


def test_forged_token_is_refused_with_400_and_nothing_recorded(fast_client, world, clean_redis):
    """A click URL with one character altered gets a 400 JSON error and leaves no trace in billing."""
    w = world(fast_client)
    token = token_of(w.one_ad()["click_url"])
    i = len(token) // 3  # inside the signed payload
    forged = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]
    r = w.click(f"/v1/click/{forged}")
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_click_token"
    assert clean_redis.xlen(keys.ledger(w.cmp_id)) == 0
    assert list(clean_redis.scan_iter(match="am:*:ledger")) == []
    t = w.totals()
    assert (t["clicks"], t["invalid_total"], t["spend_fen"]) == (0, 0, 0)


def test_expired_click_redirects_but_is_recorded_expired(fast_client, world, clean_redis):
    """A click token older than the click window still redirects and is recorded as 'expired', uncharged."""
    w = world(fast_client)
    signer = ClickSigner([OLD_KEY])
    claim = signer.verify(token_of(w.one_ad()["click_url"]))
    old = signer.sign(dataclasses.replace(claim, issued=claim.issued - 2 * 3600))
    r = w.click(f"/v1/click/{old}")
    assert (r.status_code, r.headers["location"]) == (302, f"{AD['landing_url']}?admatch_click={claim.imp}.{claim.cmp}")
    assert ledger_reasons(clean_redis, w.cmp_id) == ["expired"]
    t = w.totals()
    assert (t["clicks"], t["spend_fen"], t["invalid_clicks"]) == (0, 0, {"expired": 1})


def test_click_faster_than_a_person_is_recorded_too_fast(app, world, clean_redis):
    """A click sooner after serving than click_min_delay_seconds is 'too_fast' and not charged."""
    with app(click_min_delay_seconds=5.0) as client:
        w = world(client)
        assert w.click(w.one_ad()["click_url"]).status_code == 302
        assert ledger_reasons(clean_redis, w.cmp_id) == ["too_fast"]
        assert w.totals()["spend_fen"] == 0


@pytest.mark.parametrize("first", ["too_fast", "bot"])
def test_an_invalid_first_click_leaves_the_readers_click_to_be_charged(app, world, clean_redis, first):
    """A click too soon after serving, or a crawler's after the delay, then the reader's: the reader is charged once."""
    with app(click_min_delay_seconds=0.5) as client:
        w = world(client)
        ad = w.one_ad()
        if first == "bot":
            time.sleep(0.6)
            assert w.click(ad["click_url"], headers={"User-Agent": "Baiduspider/2.0"}).status_code == 302
        else:
            assert w.click(ad["click_url"]).status_code == 302  # at once: too fast
            time.sleep(0.6)
        assert w.click(ad["click_url"]).status_code == 302  # the reader
        assert w.click(ad["click_url"]).status_code == 302  # and again
        assert ledger_reasons(clean_redis, w.cmp_id) == [first, "valid", "duplicate"]
        t = w.totals()
        assert (t["clicks"], t["spend_fen"], t["invalid_clicks"]) == (1, ad["price_fen"], {first: 1, "duplicate": 1})


def test_replaying_one_click_url_adds_a_bounded_number_of_ledger_entries(fast_client, world, clean_redis):
    """300 replays of one click URL by a crawler and a browser (rate limited after 3 a minute) add one
    ledger entry per outcome, and the report still counts every click."""
    w = world(fast_client)
    url = w.one_ad()["click_url"]
    crawler = {"User-Agent": "Baiduspider/2.0"}
    for i in range(300):
        assert w.click(url, headers=crawler if i % 3 == 0 else None).status_code == 302
    reasons = ledger_reasons(clean_redis, w.cmp_id)
    assert reasons[:2] == ["bot", "valid"] and len(reasons) == len(set(reasons)) <= len(InvalidReason) + 1
    t = w.totals()
    assert t["clicks"] + t["invalid_total"] == 300 and t["clicks"] == 1


@pytest.mark.parametrize("ua", ["Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
                                "python-requests/2.32.3", ""], ids=["baiduspider", "script", "empty"])
def test_crawler_click_redirects_but_is_recorded_as_bot(fast_client, world, clean_redis, ua):
    """A crawler or script following a click URL is redirected and recorded as 'bot', uncharged."""
    w = world(fast_client)
    assert w.click(w.one_ad()["click_url"], headers={"User-Agent": ua}).status_code == 302
    assert ledger_reasons(clean_redis, w.cmp_id) == ["bot"]
    assert w.totals()["spend_fen"] == 0


def test_clicks_over_the_per_minute_limit_are_rate_limited(fast_client, world, clean_redis):
    """From one IP, clicks beyond clicks_per_minute (3 here) are recorded as 'rate_limited' and not charged."""
    w = world(fast_client)
    ads = [w.one_ad() for _ in range(4)]
    if time.time() % 60 > 57:  # keep the four clicks inside one minute
        time.sleep(60 - time.time() % 60 + 0.1)
    for ad in ads:
        assert w.click(ad["click_url"]).status_code == 302
    assert ledger_reasons(clean_redis, w.cmp_id) == ["valid", "valid", "valid", "rate_limited"]
    t = w.totals()
    assert (t["clicks"], t["spend_fen"]) == (3, sum(ad["price_fen"] for ad in ads[:3]))


# ---- click-signing key rotation ---------------------------------------------------------------

def test_rotated_keys_verify_old_tokens_and_sign_with_the_new_key(fast_client, redis_url, index_dir, tmp_path,
                                                                  world, clean_redis, monkeypatch):
    """After ADMATCH_CLICK_SECRET_KEYS becomes [old, new], old links still charge and new links use the new key."""
    w = world(fast_client)  # signs with [old] only
    old_ad = w.one_ad()
    monkeypatch.setenv("ADMATCH_CLICK_SECRET_KEYS", f'["{OLD_KEY}", "{NEW_KEY}"]')
    with TestClient(create_app(base_settings(redis_url, tmp_path, index_dir, click_min_delay_seconds=0))) as client:
        w.client = client
        assert w.click(old_ad["click_url"]).status_code == 302
        assert ledger_reasons(clean_redis, w.cmp_id) == ["valid"]
        new_token = token_of(w.one_ad()["click_url"])
        assert ClickSigner([NEW_KEY]).verify(new_token).cmp == w.cmp_id
        with pytest.raises(BadClickToken):
            ClickSigner([OLD_KEY]).verify(new_token)


def test_valid_payload_signed_with_an_unknown_key_is_refused_and_nothing_recorded(fast_client, world, clean_redis):
    """A fresh, valid click claim signed with a key the service does not hold gets a 400, and nothing is charged or recorded."""
    w = world(fast_client)
    claim = ClickSigner([OLD_KEY]).verify(token_of(w.one_ad()["click_url"]))
    stranger = ClickSigner(["not-our-key"]).sign(claim)
    r = w.click(f"/v1/click/{stranger}")
    assert (r.status_code, r.json()["error"]) == (400, "invalid_click_token")
    assert clean_redis.xlen(keys.ledger(w.cmp_id)) == 0
    t = w.totals()
    assert (t["clicks"], t["invalid_total"], t["spend_fen"]) == (0, 0, 0)
    genuine = ClickSigner([OLD_KEY]).sign(claim)  # control: the same claim signed with our key is charged
    assert w.click(f"/v1/click/{genuine}").status_code == 302
    assert ledger_reasons(clean_redis, w.cmp_id) == ["valid"]


def test_tokens_issued_compressed_before_still_verify() -> None:
    """Tokens are now written uncompressed; ones itsdangerous compressed (issued before) verify."""
    import hashlib
    from dataclasses import asdict

    from itsdangerous import URLSafeSerializer

    from service.billing.clicks import SALT, ClickClaim
    claim = ClickClaim(imp="0" * 32, ad="ad-1", cmp="cmp-1", adv="adv-1", pub="pub-1", price=120,
                       issued=1764800000.5, url="https://example.com/" + "landing/" * 10, user=None)
    old = URLSafeSerializer([OLD_KEY], salt=SALT, signer_kwargs={"digest_method": hashlib.sha256}).dumps(asdict(claim))
    assert isinstance(old, str) and old.startswith(".")  # compressed
    signer = ClickSigner([OLD_KEY])
    assert signer.verify(old) == claim
    new = signer.sign(claim)
    assert not new.startswith(".") and signer.verify(new) == claim

# ---- budgets and frequency in serving ---------------------------------------------------------

def test_campaign_with_spent_budget_stops_serving_within_a_second(fast_client, world):
    """Once a click leaves less budget than the bid, /v1/match stops returning the campaign within 1 s."""
    w = world(fast_client, floor_fen=100, total_budget_fen=150)
    ad = w.one_ad()
    assert ad["price_fen"] == 100  # alone in the auction: pays the floor
    assert w.click(ad["click_url"]).status_code == 302
    deadline = time.monotonic() + 1.0
    while w.match() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert w.match() == []
    assert w.totals()["spend_fen"] == 100


def test_frequency_cap_limits_impressions_per_user_key(fast_client, world):
    """A user who has seen a capped campaign cap-many times today no longer gets it; other users do."""
    w = world(fast_client, frequency_cap=2)
    assert [len(w.match(user_key="u1")) for _ in range(3)] == [1, 1, 0]
    assert len(w.match(user_key="u2")) == 1
    assert len(w.match()) == 1
    assert w.totals()["impressions"] == 4


# ---- reports ----------------------------------------------------------------------------------

def test_campaign_report_json_and_csv_for_its_advertiser_only(fast_client, world):
    """The owning advertiser reads its campaign report as JSON and CSV; another advertiser gets a 404."""
    w = world(fast_client)
    ad = w.one_ad()
    w.click(ad["click_url"])
    body = w.campaign_report(granularity="hour").json()
    assert body["campaign_id"] == w.cmp_id and body["granularity"] == "hour"
    assert [r["clicks"] for r in body["rows"]] == [1]
    assert body["totals"]["spend_fen"] == ad["price_fen"] and body["totals"]["ctr"] == 1.0

    csv = w.campaign_report(format="csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    header, total = lines[0].split(","), lines[-1].split(",")
    assert header[:3] == ["period", "impressions", "clicks"] and total[0] == "total"
    assert total[header.index("spend_fen")] == str(ad["price_fen"])

    other = fast_client.post("/v1/advertisers", json={"name": "别家"}, headers=auth(ADMIN_KEY)).json()
    r = w.campaign_report(key=other["api_key"])
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_advertiser_report_lists_each_campaign_with_its_figures(fast_client, world):
    """The account report has a row per campaign, zeros included, each equal to that campaign's own
    report, and totals that add them up; by day only the days with counts; its advertiser and the
    admin may read it, another advertiser gets a 404 and a publisher a 403."""
    w = world(fast_client)
    quiet = fast_client.post("/v1/campaigns", json={"name": "备用"}, headers=auth(w.adv_key)).json()
    ad = w.one_ad()
    assert w.click(ad["click_url"]).status_code == 302
    path = f"/v1/reports/advertisers/{ADV_ID}"
    body = fast_client.get(path, headers=auth(w.adv_key)).json()
    assert body["advertiser_id"] == ADV_ID and body["granularity"] == "total"
    rows = {r["key"]: r for r in body["rows"]}
    assert [r["key"] for r in body["rows"]] == sorted([w.cmp_id, quiet["id"]])
    own = w.totals()
    assert (own["impressions"], own["clicks"], own["spend_fen"]) == (1, 1, ad["price_fen"])
    assert {k: v for k, v in rows[w.cmp_id].items() if k not in ("key", "name")} == own
    assert rows[w.cmp_id]["name"] == "3G推广" and rows[quiet["id"]]["name"] == "备用"
    assert (rows[quiet["id"]]["impressions"], rows[quiet["id"]]["spend_fen"]) == (0, 0)
    assert (body["totals"]["impressions"], body["totals"]["spend_fen"]) == (1, ad["price_fen"])

    by_day = fast_client.get(path, params={"granularity": "day"}, headers=auth(w.adv_key)).json()
    [day] = by_day["rows"]
    assert day["key"] == w.cmp_id and day["period"] == by_day["to"] and day["clicks"] == 1

    csv = fast_client.get(path, params={"format": "csv"}, headers=auth(ADMIN_KEY))
    assert csv.status_code == 200 and csv.text.splitlines()[0].startswith("key,name,period,impressions,clicks")
    assert len(csv.text.strip().splitlines()) == 4  # header, two campaigns, total

    other = fast_client.post("/v1/advertisers", json={"name": "别家"}, headers=auth(ADMIN_KEY)).json()
    assert fast_client.get(path, headers=auth(other["api_key"])).status_code == 404
    assert fast_client.get(path, headers=auth(w.pub_key)).status_code == 403
    assert fast_client.get("/v1/reports/advertisers/nobody", headers=auth(ADMIN_KEY)).status_code == 404


@pytest.mark.parametrize(("params", "field"), [
    ({"from": "2024-03-10", "to": "2024-03-01"}, "from"), ({"granularity": "hour"}, "granularity"),
    ({"format": "xml"}, "format"), ({"from": "2023-01-01", "to": "2024-01-01"}, "from")],
    ids=["from-after-to", "hour", "xml", "over-92-days"])
def test_advertiser_report_refuses_bad_parameters_naming_the_field(fast_client, world, params, field):
    """The account report's bad parameters get a 422 JSON error naming the field."""
    w = world(fast_client)
    r = fast_client.get(f"/v1/reports/advertisers/{ADV_ID}", params=params, headers=auth(w.adv_key))
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_request" and field in r.text


def test_campaign_report_publishes_the_ledger_chain_head_of_each_day(fast_client, world, clean_redis):
    """The JSON campaign report's ``chain`` gives today's ledger head: the hash and seq of the last
    ledger entry and the day's entry count, as in the stream."""
    w = world(fast_client)
    for ad in (w.one_ad(), w.one_ad()):
        assert w.click(ad["click_url"]).status_code == 302
    [*_, (_id, last)] = clean_redis.xrange(keys.ledger(w.cmp_id))
    body = w.campaign_report().json()
    day = f"{last['day'][:4]}-{last['day'][4:6]}-{last['day'][6:]}"
    assert body["chain"] == {day: {"head": last["hash"], "seq": 2, "entries": 2}}


def test_publisher_report_shows_earnings_to_that_publisher_only(fast_client, world):
    """A publisher reads its own report with earnings = floor(spend × share); another id is a 404."""
    w = world(fast_client)
    ad = w.one_ad()
    w.click(ad["click_url"])
    r = fast_client.get(f"/v1/reports/publishers/{w.pub_id}", headers=auth(w.pub_key))
    assert r.status_code == 200
    share = r.json()["revenue_share"]
    t = r.json()["totals"]
    assert (t["clicks"], t["spend_fen"]) == (1, ad["price_fen"])
    assert t["earnings_fen"] == math.floor(ad["price_fen"] * share)

    other = fast_client.post("/v1/publishers", json={"name": "别家", "floor_fen": 1}, headers=auth(ADMIN_KEY)).json()
    r = fast_client.get(f"/v1/reports/publishers/{w.pub_id}", headers=auth(other["api_key"]))
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    csv = fast_client.get(f"/v1/reports/publishers/{w.pub_id}", params={"format": "csv"}, headers=auth(w.pub_key))
    assert csv.text.splitlines()[0].endswith(",earnings_fen,requested_slots,fill_rate")


def test_reports_refuse_the_wrong_kind_of_key(fast_client, world):
    """A publisher key cannot read a campaign report and an advertiser key cannot read a publisher report."""
    w = world(fast_client)
    assert w.campaign_report(key=w.pub_key).status_code == 403
    r = fast_client.get(f"/v1/reports/publishers/{w.pub_id}", headers=auth(w.adv_key))
    assert r.status_code == 403 and r.json()["error"] == "forbidden"


@pytest.mark.parametrize("params", [
    {"from": "2024-03-10", "to": "2024-03-01"},
    {"from": "2024-13-01"},
    {"to": "yesterday"},
    {"granularity": "week"},
    {"format": "xml"},
    {"from": "2023-01-01", "to": "2024-01-01"},
    {"from": "9999-12-31", "to": "9999-12-31"},
    {"to": "0001-01-03"},
], ids=["from-after-to", "bad-month", "bad-date", "week", "xml", "over-92-days", "last-date", "first-date"])
def test_bad_report_parameters_get_a_4xx_json_error(fast_client, params):
    """Report parameters that make no sense are refused with a 4xx JSON error naming the problem."""
    r = fast_client.get("/v1/reports/campaigns/any", params=params, headers=auth(ADMIN_KEY))
    assert 400 <= r.status_code < 500
    body = r.json()
    assert body["error"] == "invalid_request" and body["detail"]


@pytest.mark.parametrize("params", [{"from": "2999-12-30", "to": "2999-12-31"}, {"to": "2000-01-01"}],
                         ids=["last-days", "first-day"])
def test_reports_at_the_edges_of_the_date_range_answer(fast_client, params):
    """Reports on the first and last days the range allows answer 200, in JSON and CSV."""
    for fmt in ("json", "csv"):
        r = fast_client.get("/v1/reports/campaigns/any", params={**params, "format": fmt}, headers=auth(ADMIN_KEY))
        assert r.status_code == 200, r.text


def test_admin_raises_a_publishers_floor_and_the_auction_charges_it(fast_client, world):
    """After the admin raises a publisher's floor, a lone winner pays the new floor."""
    w = world(fast_client, floor_fen=10)
    assert w.one_ad()["price_fen"] == 10
    r = fast_client.patch(f"/v1/publishers/{w.pub_id}", json={"floor_fen": 25}, headers=auth(ADMIN_KEY))
    assert r.status_code == 200 and r.json()["floor_fen"] == 25
    assert w.one_ad()["price_fen"] == 25
    r = fast_client.patch(f"/v1/publishers/{w.pub_id}", json={"floor_fen": -1}, headers=auth(ADMIN_KEY))
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "floor_fen"
    r = fast_client.patch(f"/v1/publishers/{w.pub_id}", json={"floor_fen": 30}, headers=auth(w.pub_key))
    assert r.status_code == 403
