"""The demo's replayed day (service/demo/traffic.py) through the real match and click path: a
day of figures in the reports, money that reconciles with the ledger, budgets left, once per
database, the same day for the same seed and time, and none when the demo is asked for none."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr

from service.app import create_app, open_redis
from service.billing import ledger
from service.cli import main
from service.demo.guide import NO_TRAFFIC
from service.demo.loader import (
    DEMO_ADMIN_KEY,
    DEMO_ADVERTISER,
    DEMO_ADVERTISER_CAMPAIGN,
    DEMO_PUBLISHER_KEY,
    advertiser_key,
    demo_catalog,
    load_demo,
)
from service.demo.readers import DIURNAL, traffic_pages, visit_times
from service.demo.traffic import DAY_S, Summary, replay_day, replayed
from service.serving.indexing import build_from_catalog
from service.settings import Settings
from service.store import keys
from service.store.catalog import CatalogStore
from tests.conftest import ADMIN_KEY, TEST_REDIS_TIMEOUT_MS, auth, on_database
from tests.helpers import ADMIN

TZ = ZoneInfo("Asia/Shanghai")
# A fixed "now" (half past eleven at night): the same day every run.
NOW = datetime(2026, 11, 30, 23, 30, tzinfo=TZ).timestamp()
FROM, TO = "2026-11-29", "2026-11-30"
CAMPAIGNS = [(c["id"], c) for adv in demo_catalog()["advertisers"] for c in adv["campaigns"]]


def demo_settings(url: str, data_dir: Path) -> Settings:
    return Settings(redis_url=url, data_dir=data_dir, admin_key=SecretStr(ADMIN_KEY), index_poll_seconds=0.2,
                    redis_timeout_ms=TEST_REDIS_TIMEOUT_MS, semantic=False, analysis_enabled=False,
                    _env_file=None)  # type: ignore[call-arg]


def load_and_replay(settings: Settings, now: float) -> Summary | None:
    async def go() -> Summary | None:
        r = open_redis(settings.redis_url or "", False)
        try:
            store = CatalogStore(r)
            await load_demo(store)
            await build_from_catalog(store, settings.index_root)
            return await replay_day(r, settings, now=now)
        finally:
            await r.aclose()
    return asyncio.run(go())


def on_redis(settings: Settings, fn: Any) -> Any:
    async def go() -> Any:
        r = open_redis(settings.redis_url or "", False)
        try:
            return await fn(r)
        finally:
            await r.aclose()
    return asyncio.run(go())


@pytest.fixture(scope="module")
def day(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Summary, TestClient]]:
    """The demo catalog with its day replayed up to :data:`NOW`, in database 14, and an app serving it."""
    url = on_database(redis_url, 14)
    r = redis.Redis.from_url(url)
    r.flushdb()
    settings = demo_settings(url, tmp_path_factory.mktemp("demo-traffic"))
    summary = load_and_replay(settings, NOW)
    assert summary is not None
    try:
        with TestClient(create_app(settings)) as c:
            yield settings, summary, c
    finally:
        r.flushdb()
        r.close()


def report(c: TestClient, cid: str, headers: dict[str, str] = ADMIN, granularity: str = "hour") -> dict[str, Any]:
    r = c.get(f"/v1/reports/campaigns/{cid}", params={"from": FROM, "to": TO, "granularity": granularity},
              headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_replay_is_a_few_thousand_impressions_with_clicks_of_every_kind(day: tuple[Settings, Summary, TestClient]) -> None:
    """Page views become a few thousand impressions, most viewable; a few per cent are clicked;
    invalid clicks of several reasons and conversions come with them."""
    _, s, _ = day
    assert 1000 <= s.page_views <= 2000 and 2000 <= s.impressions <= 8000
    assert 0.5 < s.viewable / s.impressions < 0.9
    assert 0.01 < s.clicks / s.impressions < 0.06
    assert {"duplicate", "bot", "too_fast", "rate_limited"} <= set(s.invalid)
    assert s.conversions > 0 and s.spend_fen > 0


def test_demo_advertisers_hourly_report_has_a_day_of_everything(day: tuple[Settings, Summary, TestClient]) -> None:
    """The printed advertiser's campaign report, by hour, with its own key: impressions over most
    hours of the day, clicks over many, and spend, viewable impressions, invalid clicks and
    conversions; nothing outside the replayed 24 hours."""
    _, _, c = day
    rep = report(c, DEMO_ADVERTISER_CAMPAIGN, auth(advertiser_key(DEMO_ADVERTISER)))
    rows, total = rep["rows"], rep["totals"]
    assert len([r for r in rows if r["impressions"]]) >= 18
    assert len([r for r in rows if r["clicks"]]) >= 6
    assert total["spend_fen"] > 0 and total["viewable_impressions"] > 0
    assert total["invalid_total"] > 0 and total["conversions"] > 0 and total["conversion_value_fen"] > 0
    first = datetime.fromtimestamp(NOW - DAY_S, TZ).strftime("%Y-%m-%dT%H:00")
    last = datetime.fromtimestamp(NOW, TZ).strftime("%Y-%m-%dT%H:00")
    assert all(first <= r["period"] <= last for r in rows), [r["period"] for r in rows]


def test_reports_add_up_to_the_replay_and_the_evening_is_busiest(day: tuple[Settings, Summary, TestClient]) -> None:
    """Every campaign's report summed gives the replay's figures; impressions by hour of day
    follow the diurnal curve (the evening several times the small hours)."""
    _, s, c = day
    totals: Counter[str] = Counter()
    invalid: Counter[str] = Counter()
    by_hour: Counter[int] = Counter()
    for cid, _ in CAMPAIGNS:
        rep = report(c, cid)
        for k in ("impressions", "viewable_impressions", "clicks", "spend_fen", "conversions"):
            totals[k] += rep["totals"][k]
        invalid.update(rep["totals"]["invalid_clicks"])
        for row in rep["rows"]:
            by_hour[int(row["period"][11:13])] += row["impressions"]
    assert totals == Counter({"impressions": s.impressions, "viewable_impressions": s.viewable, "clicks": s.clicks,
                              "spend_fen": s.spend_fen, "conversions": s.conversions})
    assert invalid == s.invalid
    evening, night = sum(by_hour[h] for h in (19, 20, 21, 22)), sum(by_hour[h] for h in (2, 3, 4, 5))
    assert evening > 4 * night > 0


def test_publisher_report_has_the_days_fill_rate(day: tuple[Settings, Summary, TestClient]) -> None:
    """The demo publisher's hourly report, with its key: the replay's impressions and the slots its
    page views asked for, in the replayed hours (not the hour the replay ran in), so the fill rate
    is impressions over slots."""
    _, s, c = day
    r = c.get("/v1/reports/publishers/demo-news", params={"from": FROM, "to": TO, "granularity": "hour"},
              headers=auth(DEMO_PUBLISHER_KEY))
    assert r.status_code == 200, r.text
    total = r.json()["totals"]
    assert total["impressions"] == s.impressions and total["requested_slots"] == s.requested_slots
    assert 0.5 < total["fill_rate"] <= 1 and total["fill_rate"] == round(s.impressions / s.requested_slots, 6)
    assert len([row for row in r.json()["rows"] if row["requested_slots"]]) >= 20


def test_spend_is_the_sum_of_the_ledgers_charges(day: tuple[Settings, Summary, TestClient]) -> None:
    """admatch ledger verify's check: every counter matches the ledger, the chains are whole, and
    the ledger's charges are the replay's spend."""
    settings, s, _ = day
    v = on_redis(settings, ledger.verify)
    assert v.ok, v.mismatches
    assert v.charged_fen == s.spend_fen and v.chained_entries > s.clicks


def test_budgets_are_left_and_the_demo_article_still_gets_ads(day: tuple[Settings, Summary, TestClient]) -> None:
    """No campaign spent a tenth of its daily budget on either day; the demo article's page still
    fills its two slots."""
    _, _, c = day
    for cid, cmp in CAMPAIGNS:
        for row in report(c, cid, granularity="day")["rows"]:
            assert row["spend_fen"] < cmp["daily_budget_fen"] / 10, (cid, row)
    article = next(p for p in traffic_pages() if p.id == "article-ev-sales")
    r = c.post("/v1/match", headers=auth(DEMO_PUBLISHER_KEY),
               json={"publisher_id": "demo-news", "slots": 2, "page": {"title": article.title, "text": article.text}})
    assert r.status_code == 200 and len(r.json()["ads"]) == 2, r.text


def test_a_second_replay_on_the_same_database_adds_nothing(day: tuple[Settings, Summary, TestClient]) -> None:
    """The marker makes a second start (the same time, or an hour later) replay nothing: reports
    and the ledger are as they were."""
    settings, s, c = day
    before = [report(c, cid)["totals"] for cid, _ in CAMPAIGNS]
    entries = on_redis(settings, ledger.verify).entries

    async def again(r: Any) -> list[Summary | None]:
        return [await replay_day(r, settings, now=NOW), await replay_day(r, settings, now=NOW + 3600)]

    assert on_redis(settings, again) == [None, None]
    assert [report(c, cid)["totals"] for cid, _ in CAMPAIGNS] == before
    assert on_redis(settings, ledger.verify).entries == entries
    marker = on_redis(settings, replayed)
    assert marker["done"] and marker["impressions"] == s.impressions and marker["end"] == NOW


def test_the_same_seed_and_time_replay_the_same_day(day: tuple[Settings, Summary, TestClient], redis_url: str,
                                                    tmp_path: Path) -> None:
    """Another database, the same catalog, seed and time: the same figures."""
    _, s, _ = day
    url = on_database(redis_url, 13)
    r = redis.Redis.from_url(url)
    r.flushdb()
    try:
        other = load_and_replay(demo_settings(url, tmp_path), NOW)
    finally:
        r.flushdb()
        r.close()
    assert other is not None
    assert {**other.as_dict(), "seconds": 0} == {**s.as_dict(), "seconds": 0}


def test_visit_times_follow_the_hours_weights() -> None:
    """Page views by local hour are in proportion to DIURNAL (within sampling noise)."""
    times = visit_times(random.Random(3), 20_000, NOW - DAY_S, NOW, TZ)
    assert len(times) == 20_000 and times == sorted(times) and times[0] >= NOW - DAY_S and times[-1] < NOW
    hours = Counter(datetime.fromtimestamp(t, TZ).hour for t in times)
    for h, w in enumerate(DIURNAL):
        expected = 20_000 * w / sum(DIURNAL)
        assert abs(hours[h] - expected) < 5 * expected ** 0.5 + 5, (h, hours[h], expected)


def _demo(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    main(["demo", "--no-serve", "--host", "127.0.0.1", "--port", "8766", *argv])
    return capsys.readouterr().out


def test_demo_command_prints_the_console_and_its_keys_and_replays_once_unless_told_not_to(
        redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`admatch demo` prints the console URL and the advertiser, publisher and admin keys; with
    --no-traffic or ADMATCH_DEMO_TRAFFIC=false nothing is replayed; otherwise the first start
    replays the day and says so, and the next says it is not replayed again."""
    url = on_database(redis_url, 12)
    r = redis.Redis.from_url(url, decode_responses=True)
    r.flushdb()
    for k, v in {"ADMATCH_REDIS_URL": url, "ADMATCH_DATA_DIR": str(tmp_path), "ADMATCH_SEMANTIC": "false",
                 "ADMATCH_ANALYSIS_ENABLED": "false", "ADMATCH_DEMO_PAGES": "true",
                 "ADMATCH_PUBLIC_BASE_URL": "http://127.0.0.1:8766"}.items():
        monkeypatch.setenv(k, v)
    for k in ("ADMATCH_ADMIN_KEY", "ADMATCH_DEMO_TRAFFIC"):  # unset, and as they were again afterwards
        monkeypatch.setenv(k, "")
        monkeypatch.delenv(k)
    try:
        out = _demo(["--no-traffic"], capsys)
        assert "in a browser:  http://127.0.0.1:8766/console/" in out
        for key in (advertiser_key(DEMO_ADVERTISER), DEMO_PUBLISHER_KEY, DEMO_ADMIN_KEY):
            assert key in out
        assert " ".join(NO_TRAFFIC.split()) in " ".join(out.split())
        assert r.get(keys.DEMO_TRAFFIC) is None and not list(r.scan_iter("am:{c:*}:stats:*"))
        monkeypatch.setenv("ADMATCH_DEMO_TRAFFIC", "false")
        assert " ".join(NO_TRAFFIC.split()) in " ".join(_demo([], capsys).split())
        assert r.get(keys.DEMO_TRAFFIC) is None and not list(r.scan_iter("am:{c:*}:stats:*"))
        monkeypatch.delenv("ADMATCH_DEMO_TRAFFIC")
        first = " ".join(_demo([], capsys).split())
        assert "A day of simulated traffic was replayed" in first and "charged clicks" in first
        assert r.get(keys.DEMO_TRAFFIC) is not None and list(r.scan_iter("am:{c:*}:stats:*"))
        second = " ".join(_demo([], capsys).split())
        assert "it is not replayed again" in second and "was replayed (" not in second
    finally:
        r.flushdb()
        r.close()
