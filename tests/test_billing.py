"""Click billing against the real Redis: the click script, rate limits, budgets, ledger and reports.

Each test flushes the database (``clean_redis``), creates its campaigns through
:class:`service.store.catalog.CatalogStore` so the budget hash is mirrored as in production, and drives
:class:`service.billing.billing.Billing` on a ``redis.asyncio`` client inside ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import calendar
import dataclasses
import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching.click_rules import InvalidReason, is_bot, timing_reason
from matching.pacing import BudgetState, may_enter
from service.billing import ledger, reports
from service.billing.billing import Billing, ClickDecision, Clock
from service.billing.clicks import ClickClaim
from service.store import keys
from service.store.catalog import CatalogStore
from service.store.records import Pacing

TZ = "Asia/Shanghai"
WINDOW_S = 3600.0
BROWSER_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/124.0 Safari/537.36")
ADV, CMP, AD, PUB = "adv1", "cmp1", "ad1", "pub1"


@dataclass
class Env:
    r: aioredis.Redis
    billing: Billing
    store: CatalogStore

    async def campaign(self, cid: str = CMP, *, daily: int | None = None, total: int | None = None,
                       frequency_cap: int | None = None) -> str:
        if not await self.r.exists(keys.advertiser(ADV)):
            await self.store.create_advertiser("广告主", id=ADV)
        await self.store.create_campaign(ADV, name=cid, id=cid, daily_budget_fen=daily, total_budget_fen=total,
                                         frequency_cap=frequency_cap)
        return cid

    async def ledger(self, cid: str = CMP) -> list[dict[str, str]]:
        return [fields for _id, fields in await self.r.xrange(keys.ledger(cid))]

    async def spend(self, cid: str = CMP) -> int:
        return int(await self.r.get(keys.spend_total(cid)) or 0)


@asynccontextmanager
async def env(url: str, **pool: int) -> AsyncIterator[Env]:
    if pool:
        r = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
            url, decode_responses=True, max_connections=pool["max_connections"], timeout=30))
    else:
        r = aioredis.from_url(url, decode_responses=True)
    try:
        yield Env(r, Billing(r, Clock(TZ), click_window_s=WINDOW_S), CatalogStore(r))
    finally:
        await r.aclose()


def claim(price: int, *, cid: str = CMP, pub: str = PUB, issued: float | None = None,
          user: str | None = None) -> ClickClaim:
    return ClickClaim(imp=uuid.uuid4().hex, ad=AD, cmp=cid, adv=ADV, pub=pub, price=price,
                      issued=time.time() - 5 if issued is None else issued,
                      url="https://example.com/landing", user=user)


# ---- one click --------------------------------------------------------------------------------

def test_valid_click_charges_the_price_once_and_appends_one_ledger_entry(redis_url, clean_redis):
    """A valid click adds exactly its price to total, daily and hourly spend and one 'valid' ledger entry."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(daily=10_000, total=100_000)
            c, now = claim(137), time.time()
            d = await e.billing.decide_click(c, None, now)
            assert d == ClickDecision(charged=True, amount_fen=137, reason="valid")
            assert await e.spend() == 137
            assert int(await e.r.get(keys.spend_day(CMP, e.billing.clock.day(now)))) == 137
            stats = await e.r.hgetall(keys.stats(CMP, e.billing.clock.hour(now)))
            assert (stats["click"], stats["spend"], stats[f"a:{AD}:spend"], stats[f"p:{PUB}:click"]) == \
                ("1", "137", "137", "1")
            [entry] = await e.ledger()
            assert (entry["imp"], entry["ad"], entry["pub"], entry["amount"], entry["reason"], entry["ts"]) == \
                (c.imp, AD, PUB, "137", "valid", str(int(now * 1000)))
    asyncio.run(go())


def test_second_click_on_an_impression_is_a_free_duplicate(redis_url, clean_redis):
    """Clicking the same impression again is recorded as 'duplicate' and charges nothing more."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(total=100_000)
            c = claim(90)
            first = await e.billing.decide_click(c, None, time.time())
            second = await e.billing.decide_click(c, None, time.time())
            assert first.charged and not second.charged
            assert (second.amount_fen, second.reason) == (0, "duplicate")
            assert await e.spend() == 90
            assert [(x["reason"], x["amount"]) for x in await e.ledger()] == [("valid", "90"), ("duplicate", "0")]
    asyncio.run(go())


@pytest.mark.parametrize("age_s,expected", [(WINDOW_S + 1, InvalidReason.EXPIRED), (0.2, InvalidReason.TOO_FAST)])
def test_clicks_outside_the_timing_window_are_recorded_but_not_charged(redis_url, clean_redis, age_s, expected):
    """A click older than the window is 'expired', one sooner than a person clicks is 'too_fast'; neither is charged."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(total=100_000)
            now = time.time()
            c = claim(50, issued=now - age_s)
            reason = timing_reason(c.issued, now, window_s=WINDOW_S, min_delay_s=1.0)
            assert reason == expected
            d = await e.billing.decide_click(c, reason, now)
            assert (d.charged, d.amount_fen, d.reason) == (False, 0, expected.value)
            assert await e.spend() == 0
            stats = await e.r.hgetall(keys.stats(CMP, e.billing.clock.hour(now)))
            assert stats[f"inv:{expected.value}"] == "1" and "click" not in stats
            assert [x["reason"] for x in await e.ledger()] == [expected.value]
    asyncio.run(go())


@pytest.mark.parametrize("ua", [
    "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.5.0", "", None,
], ids=["baiduspider", "googlebot", "curl", "empty", "missing"])
def test_crawler_or_missing_user_agent_is_a_bot_click(redis_url, clean_redis, ua):
    """A click from a crawler or without a user agent is recorded as 'bot' and not charged."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(total=100_000)
            assert is_bot(ua)
            d = await e.billing.decide_click(claim(50), InvalidReason.BOT, time.time())
            assert (d.charged, d.reason) == (False, "bot")
            assert await e.spend() == 0
            assert [x["reason"] for x in await e.ledger()] == ["bot"]
    asyncio.run(go())


def test_browser_user_agent_is_not_a_bot():
    """Desktop and mobile browser user agents pass the bot check."""
    assert not is_bot(BROWSER_UA)
    assert not is_bot("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
                      "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")


# ---- rate limits ------------------------------------------------------------------------------

def minute_start() -> float:
    return math.floor(time.time() / 60) * 60 + 1.0


def test_rate_limit_per_ip_per_minute(redis_url, clean_redis):
    """An IP over its per-minute limit is limited; another IP and the next minute are not."""
    async def go() -> None:
        async with env(redis_url) as e:
            now = minute_start()
            hits = [await e.billing.over_rate_limit(["ip:10.0.0.1"], now, 3, 1000) for _ in range(5)]
            assert hits == [False, False, False, True, True]
            assert not await e.billing.over_rate_limit(["ip:10.0.0.2"], now, 3, 1000)
            assert not await e.billing.over_rate_limit(["ip:10.0.0.1"], now + 60, 3, 1000)
    asyncio.run(go())


def test_rate_limit_per_user_key_across_ips(redis_url, clean_redis):
    """One user key clicking from many IPs is limited on the user key."""
    async def go() -> None:
        async with env(redis_url) as e:
            now = minute_start()
            hits = [await e.billing.over_rate_limit([f"ip:10.0.1.{i}", "user:u-42"], now, 2, 1000)
                    for i in range(4)]
            assert hits == [False, False, True, True]
    asyncio.run(go())


def test_rate_limit_per_hour(redis_url, clean_redis):
    """Clicks spread over minutes are still limited by the hourly limit, per client and per hour."""
    async def go() -> None:
        async with env(redis_url) as e:
            start = math.floor(time.time() / 3600) * 3600 + 1.0
            hits = [await e.billing.over_rate_limit(["ip:10.0.2.1"], start + 60 * i, 100, 4) for i in range(6)]
            assert hits == [False, False, False, False, True, True]
            assert not await e.billing.over_rate_limit(["ip:10.0.2.2"], start + 360, 100, 4)  # another IP
            assert not await e.billing.over_rate_limit(["ip:10.0.2.1"], start + 3600, 100, 4)  # the next hour
    asyncio.run(go())


def test_rate_limited_click_is_recorded_but_not_charged(redis_url, clean_redis):
    """A click decided 'rate_limited' is in the ledger and stats and costs nothing."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(total=100_000)
            now = time.time()
            d = await e.billing.decide_click(claim(70), InvalidReason.RATE_LIMITED, now)
            assert (d.charged, d.reason) == (False, "rate_limited")
            assert await e.spend() == 0
            stats = await e.r.hgetall(keys.stats(CMP, e.billing.clock.hour(now)))
            assert stats["inv:rate_limited"] == "1" and stats[f"p:{PUB}:inv:rate_limited"] == "1"
    asyncio.run(go())


# ---- budgets ----------------------------------------------------------------------------------

def test_daily_budget_refuses_the_click_that_would_exceed_it(redis_url, clean_redis):
    """Once a click would take today's spend over the daily budget it is refused, and tomorrow charges again."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(daily=250)
            now = time.time()
            got = [(await e.billing.decide_click(claim(100), None, now)).reason for _ in range(3)]
            assert got == ["valid", "valid", "budget_exhausted"]
            assert int(await e.r.get(keys.spend_day(CMP, e.billing.clock.day(now)))) == 200
            tomorrow = now + 86400
            assert (await e.billing.decide_click(claim(100, issued=tomorrow - 5), None, tomorrow)).charged
            assert await e.spend() == 300
    asyncio.run(go())


def test_total_budget_refuses_the_click_that_would_exceed_it(redis_url, clean_redis):
    """Once a click would take total spend over the total budget it is refused, on later days too."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(total=250)
            now = time.time()
            got = [(await e.billing.decide_click(claim(100), None, now)).reason for _ in range(3)]
            later = now + 3 * 86400
            got.append((await e.billing.decide_click(claim(100, issued=later - 5), None, later)).reason)
            assert got == ["valid", "valid", "budget_exhausted", "budget_exhausted"]
            assert await e.spend() == 200
    asyncio.run(go())


@pytest.mark.parametrize("budget", ["daily", "total"])
def test_clicks_reaching_the_budget_exactly_are_charged_and_one_fen_more_is_refused(redis_url, clean_redis, budget):
    """Spend may reach a daily or total budget of 200 fen exactly (150 + 50 charged); a 1-fen click after that is refused."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(**{budget: 200})
            now = time.time()
            got = [(await e.billing.decide_click(claim(p), None, now)).reason for p in (150, 50, 1)]
            assert got == ["valid", "valid", "budget_exhausted"]
            assert await e.spend() == 200
            assert int(await e.r.get(keys.spend_day(CMP, e.billing.clock.day(now)))) == 200
    asyncio.run(go())


def test_budget_policy_refuses_rather_than_charging_part(redis_url, clean_redis):
    """A click dearer than what is left is refused whole; a click that fits exactly is charged to the last fen."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(daily=1000, total=150)
            now = time.time()
            assert (await e.billing.decide_click(claim(100), None, now)).charged
            refused = await e.billing.decide_click(claim(51), None, now)
            assert (refused.charged, refused.amount_fen, refused.reason) == (False, 0, "budget_exhausted")
            assert await e.spend() == 100
            assert (await e.billing.decide_click(claim(50), None, now)).charged
            assert await e.spend() == 150
    asyncio.run(go())


def test_campaign_without_budget_hash_is_never_charged(redis_url, clean_redis):
    """A click for a campaign with no budget hash is refused as 'budget_exhausted' and no spend appears."""
    async def go() -> None:
        async with env(redis_url) as e:
            d = await e.billing.decide_click(claim(10, cid="ghost"), None, time.time())
            assert (d.charged, d.reason) == (False, "budget_exhausted")
            assert await e.r.get(keys.spend_total("ghost")) is None
            assert [x["reason"] for x in await e.ledger("ghost")] == ["budget_exhausted"]
            states = await e.billing.budget_states(["ghost"], time.time(), None)
            assert states["ghost"].total_budget_fen == 0
    asyncio.run(go())


# ---- concurrency ------------------------------------------------------------------------------

def test_thousand_concurrent_clicks_on_one_impression_charge_once(redis_url, clean_redis):
    """1,000 simultaneous clicks on one impression over a connection pool produce exactly one charge."""
    async def go() -> None:
        async with env(redis_url, max_connections=64) as e:
            await e.campaign(total=10**9)
            c, now = claim(123), time.time()
            decisions = await asyncio.gather(*(e.billing.decide_click(c, None, now) for _ in range(1000)))
            assert Counter(d.reason for d in decisions) == {"valid": 1, "duplicate": 999}
            assert await e.spend() == 123
            # the first duplicate is in the ledger, the other 998 are counted in the hour's stats
            assert Counter(x["reason"] for x in await e.ledger()) == {"valid": 1, "duplicate": 1}
            stats = await e.r.hgetall(keys.stats(CMP, e.billing.clock.hour(now)))
            assert (stats["inv:duplicate"], stats["rep:duplicate"]) == ("1", "998")
    asyncio.run(go())


def test_clicks_on_one_impression_from_many_threads_charge_once(redis_url, clean_redis):
    """Clicks on one impression from 8 threads, each with its own event loop and client, charge once."""
    async def setup() -> None:
        async with env(redis_url) as e:
            await e.campaign(total=10**9)
    asyncio.run(setup())
    c, now = claim(77), time.time()
    results: list[ClickDecision] = []
    lock, barrier = threading.Lock(), threading.Barrier(8, timeout=30)

    def worker() -> None:
        async def go() -> list[ClickDecision]:
            async with env(redis_url, max_connections=8) as e:
                barrier.wait()
                return list(await asyncio.gather(*(e.billing.decide_click(c, None, now) for _ in range(50))))
        out = asyncio.run(go())
        with lock:
            results.extend(out)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 400
    assert sum(d.charged for d in results) == 1
    assert int(clean_redis.get(keys.spend_total(CMP))) == 77


def test_many_impressions_against_a_small_budget_charge_exactly_what_fits(redis_url, clean_redis):
    """5,000 concurrent clicks on distinct impressions against a budget worth 100 clicks charge exactly 100."""
    async def go() -> None:
        async with env(redis_url, max_connections=64) as e:
            price = 37
            await e.campaign(total=100 * price)
            now = time.time()
            decisions = await asyncio.gather(*(e.billing.decide_click(claim(price), None, now)
                                               for _ in range(5000)))
            assert Counter(d.reason for d in decisions) == {"valid": 100, "budget_exhausted": 4900}
            assert await e.spend() == 100 * price
            v = await ledger.verify(e.r)
            assert v.ok, v.mismatches
            assert (v.entries, v.charged_fen) == (5000, 100 * price)
    asyncio.run(go())


def test_ledger_verify_reports_a_tampered_counter(redis_url, clean_redis):
    """verify finds a spend counter that no longer equals its ledger."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(total=10_000)
            await e.billing.decide_click(claim(100), None, time.time())
            assert (await ledger.verify(e.r)).ok
            await e.r.incrby(keys.spend_total(CMP), 1)
            v = await ledger.verify(e.r)
            assert not v.ok and "spend counter 101 fen, ledger 100 fen" in v.mismatches[0]
    asyncio.run(go())


def test_ledger_verify_counts_every_campaign_and_reports_day_and_hour_counters_that_disagree(redis_url, clean_redis):
    """verify sums the charges of every campaign and names a day counter and an hourly counter that differ from the ledger."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(total=10_000)
            await e.campaign("cmp2", total=10_000)
            now = time.time()
            await e.billing.decide_click(claim(100), None, now)
            await e.billing.decide_click(claim(40, cid="cmp2"), None, now)
            await e.billing.decide_click(claim(5, cid="cmp2"), InvalidReason.BOT, now)
            v = await ledger.verify(e.r)
            assert (v.ok, v.campaigns, v.entries, v.charged_fen) == (True, 2, 3, 140)
            day, hour = e.billing.clock.day(now), e.billing.clock.hour(now)
            await e.r.incrby(keys.spend_day("cmp2", day), 7)
            await e.r.hincrby(keys.stats("cmp2", hour), "inv:bot", 1)
            v = await ledger.verify(e.r)
            assert v.mismatches == [f"campaign cmp2 day {day}: counter 47 fen, ledger 40 fen",
                                    f"campaign cmp2 hour {hour} inv:bot: counter 2, ledger 1"]
    asyncio.run(go())


def test_budget_states_read_budgets_spend_pacing_and_caps_as_stored(redis_url, clean_redis):
    """Each campaign's state carries its budgets (None when unlimited), spend, pacing and frequency cap;
    a campaign with no budget hash gets an all-zero state, so it enters no auction."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.store.create_advertiser("广告主", id=ADV)
            await e.store.create_campaign(ADV, name="even", id="c-even", daily_budget_fen=500, total_budget_fen=9000,
                                          pacing=Pacing.EVEN, frequency_cap=3)
            await e.store.create_campaign(ADV, name="open", id="c-open")
            now = time.time()
            await e.billing.decide_click(claim(120, cid="c-even"), None, now)
            await e.billing.record_impressions(PUB, [(AD, "c-even")] * 2, now, "reader-1")
            states = await e.billing.budget_states(["c-even", "c-open", "c-none"], now, "reader-1")
            assert states == {
                "c-even": BudgetState(daily_budget_fen=500, total_budget_fen=9000, spent_today_fen=120,
                                      spent_total_fen=120, even_pacing=True, frequency_cap=3, user_impressions_today=2),
                "c-open": BudgetState(daily_budget_fen=None, total_budget_fen=None, spent_today_fen=0,
                                      spent_total_fen=0, even_pacing=False, frequency_cap=None),
                "c-none": BudgetState(0, 0, 0, 0)}
    asyncio.run(go())


def test_a_charge_shows_in_this_process_budget_state_at_once(redis_url, clean_redis):
    """After a charge, this process's next budget state has the new spend, though states are otherwise reused for a second."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(daily=1000, total=1000)
            now = time.time()
            assert (await e.billing.budget_states([CMP], now, None))[CMP].spent_today_fen == 0
            await e.billing.decide_click(claim(300), None, now)
            state = (await e.billing.budget_states([CMP], now, None))[CMP]
            assert (state.spent_today_fen, state.spent_total_fen) == (300, 300)
    asyncio.run(go())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prices=st.lists(st.integers(1, 500), min_size=1, max_size=40),
       total=st.integers(0, 5000), daily=st.one_of(st.none(), st.integers(0, 5000)))
def test_spend_never_exceeds_budget_for_any_prices(redis_url, clean_redis, prices, total, daily):
    """For any click prices and budgets, concurrent clicks charge the same as a sequential refuse-don't-split oracle allows and never more."""
    clean_redis.flushdb()
    cap = min(total, daily) if daily is not None else total

    async def go() -> None:
        async with env(redis_url, max_connections=16) as e:
            await e.campaign(total=total, daily=daily)
            now = time.time()
            decisions = await asyncio.gather(*(e.billing.decide_click(claim(p), None, now) for p in prices))
            charged = sum(d.amount_fen for d in decisions if d.charged)
            spend = await e.spend()
            assert spend == charged <= cap
            # spend only grows, so a click refused then cannot fit in what is left now either
            assert all(spend + p > cap for d, p in zip(decisions, prices, strict=True) if not d.charged)
            assert (await ledger.verify(e.r)).ok
    asyncio.run(go())


# ---- reports ----------------------------------------------------------------------------------

@pytest.mark.parametrize("share", [0.68, 0.57, 0.7, 0.29])
def test_report_figures_equal_the_ledger(redis_url, clean_redis, share):
    """Campaign and publisher report totals equal the ledger, and earnings are floor(spend × share)."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(total=10**6)
            now = time.time()
            await e.billing.record_impressions("pubA", [(AD, CMP)] * 7, now, None)
            await e.billing.record_impressions("pubB", [(AD, CMP)] * 3, now, None)
            # pubA earns 100 fen, pubB 300: round spends, where float spend × share lands under an integer
            plan = [("pubA", 60, None), ("pubA", 40, None), ("pubB", 250, None), ("pubB", 10, InvalidReason.BOT),
                    ("pubA", 20, InvalidReason.EXPIRED), ("pubA", 30, InvalidReason.BOT), ("pubB", 50, None)]
            for pub, price, reason in plan:
                await e.billing.decide_click(claim(price, pub=pub), reason, now)
            entries = await e.ledger()
            valid = [x for x in entries if x["reason"] == "valid"]
            day = e.billing.clock.at(now).date()

            rows, total = await reports.campaign_rows(e.r, CMP, day, day, "day")
            assert len(rows) == 1 and rows[0].as_dict() == total.as_dict() | {"period": day.isoformat()}
            assert total.impressions == 10
            assert total.clicks == len(valid) == 4
            assert total.spend_fen == sum(int(x["amount"]) for x in valid) == 400
            assert total.invalid_clicks == dict(Counter(x["reason"] for x in entries if x["reason"] != "valid"))

            for pub in ("pubA", "pubB"):
                mine = [x for x in valid if x["pub"] == pub]
                spend = sum(int(x["amount"]) for x in mine)
                _, ptotal = await reports.publisher_rows(e.r, pub, day, day, "hour", share)
                assert (ptotal.clicks, ptotal.spend_fen) == (len(mine), spend)
                assert ptotal.earnings_fen == math.floor(spend * Fraction(str(share)))
    asyncio.run(go())


def test_hourly_rows_add_up_to_the_daily_total(redis_url, clean_redis):
    """Clicks in two different hours land in two hourly rows whose sum is the total."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(total=10**6)
            now = time.time()
            later = now + 3600
            await e.billing.decide_click(claim(40), None, now)
            await e.billing.decide_click(claim(60, issued=later - 5), None, later)
            start, end = e.billing.clock.at(now).date(), e.billing.clock.at(later).date()
            rows, total = await reports.campaign_rows(e.r, CMP, start, end, "hour")
            assert [r.spend_fen for r in rows] == [40, 60]
            assert total.spend_fen == 100 and total.clicks == 2
    asyncio.run(go())


def test_day_rows_add_up_impressions_and_invalid_clicks_over_hours(redis_url, clean_redis):
    """A day row and the total sum impressions and invalid clicks of every hour, not just the last one."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(total=10**6)
            first = math.floor(time.time() / 86400) * 86400 + 3600.5  # two hours of one UTC+8 day
            second = first + 3600
            for ts, n in ((first, 3), (second, 4)):
                await e.billing.record_impressions(PUB, [(AD, CMP)] * n, ts, None)
                await e.billing.decide_click(claim(10, issued=ts - 5), InvalidReason.BOT, ts)
            day = e.billing.clock.at(first).date()
            assert e.billing.clock.at(second).date() == day  # precondition
            rows, total = await reports.campaign_rows(e.r, CMP, day, day, "day")
            assert [(r.impressions, r.invalid_clicks) for r in rows] == [(7, {"bot": 2})]
            assert (total.period, total.impressions, total.invalid_clicks) == ("total", 7, {"bot": 2})
    asyncio.run(go())


def test_a_report_covers_its_days_and_no_other(redis_url, clean_redis):
    """Clicks the day before from and the day after to are left out of the report from..to."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(total=10**6)
            noon = math.floor(time.time() / 86400) * 86400 + 4 * 3600.0  # 12:00 in Shanghai
            for offset, price in ((-1, 1), (0, 10), (1, 20), (2, 300)):
                ts = noon + offset * 86400
                await e.billing.decide_click(claim(price, issued=ts - 5), None, ts)
            start, end = e.billing.clock.at(noon).date(), e.billing.clock.at(noon + 86400).date()
            rows, total = await reports.campaign_rows(e.r, CMP, start, end, "day")
            assert [(r.period, r.spend_fen) for r in rows] == [(start.isoformat(), 10), (end.isoformat(), 20)]
            assert total.spend_fen == 30
    asyncio.run(go())


def test_publisher_rows_by_day_across_campaigns(redis_url, clean_redis):
    """A publisher's day rows sum its campaigns' impressions, clicks, invalid clicks and spend; hours with
    impressions but no click count no click."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(total=10**6)
            await e.campaign("cmp2", total=10**6)
            noon = math.floor(time.time() / 86400) * 86400 + 4 * 3600.0
            tomorrow = noon + 86400
            await e.billing.record_impressions(PUB, [(AD, CMP), (AD, "cmp2")], noon, None)  # no clicks this day
            await e.billing.record_impressions(PUB, [(AD, CMP)] * 2, tomorrow, None)
            await e.billing.decide_click(claim(30, issued=tomorrow - 5), None, tomorrow)
            await e.billing.decide_click(claim(50, cid="cmp2", issued=tomorrow - 5), None, tomorrow)
            await e.billing.decide_click(claim(70, cid="cmp2", issued=tomorrow - 5), InvalidReason.BOT, tomorrow)
            d1, d2 = e.billing.clock.at(noon).date(), e.billing.clock.at(tomorrow).date()
            rows, total = await reports.publisher_rows(e.r, PUB, d1, d2, "day", 0.5)
            assert [(r.period, r.impressions, r.clicks, r.spend_fen, r.invalid_clicks, r.earnings_fen) for r in rows] == [
                (d1.isoformat(), 2, 0, 0, {}, 0), (d2.isoformat(), 2, 2, 80, {"bot": 1}, 40)]
            assert (total.period, total.impressions, total.clicks, total.spend_fen, total.earnings_fen) == \
                ("total", 4, 2, 80, 40)
    asyncio.run(go())


@pytest.mark.parametrize("share", [None, 0.5], ids=["campaign", "publisher"])
def test_csv_report_has_a_column_per_figure_and_invalid_reason(share):
    """The CSV has period, impressions, clicks, one column per invalid reason, ctr, spend, CPC, viewable impressions,
    viewability, conversions, conversion rate, conversion value, cost per conversion and ROI (and earnings for
    publishers)."""
    row = reports.Row("2026-12-01", impressions=10, clicks=2, invalid_clicks={"bot": 3, "expired": 1}, spend_fen=90,
                      earnings_fen=None if share is None else 45, viewable=4, conversions=1, conversion_value_fen=270)
    total = dataclasses.replace(row, period="total", invalid_clicks=dict(row.invalid_clicks))
    lines = reports.to_csv([row], total).splitlines()
    reasons = [x.value for x in InvalidReason]
    header = ["period", "impressions", "clicks", *[f"invalid_{x}" for x in reasons], "ctr", "spend_fen", "avg_cpc_fen",
              "viewable_impressions", "viewability", "conversions", "conversion_rate", "conversion_value_fen",
              "cost_per_conversion_fen", "roi"]
    # by hand: ctr 2/10, CPC 90/2, viewability 4/10, conversion rate 1/2, cost per conversion 90/1, ROI 270/90
    figures = ["10", "2", *[str(row.invalid_clicks.get(x, 0)) for x in reasons], "0.2", "90", "45.0", "4", "0.4",
               "1", "0.5", "270", "90.0", "3.0"]
    if share is not None:
        header.append("earnings_fen")
        figures.append("45")
    assert lines == [",".join(header), ",".join(["2026-12-01", *figures]), ",".join(["total", *figures])]


def test_clicks_flow_into_report_rows_of_the_billing_timezone(redis_url, clean_redis):
    """A click's hour in the report is its hour in the billing timezone, not UTC."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(total=10**6)
            now = time.time()
            await e.billing.decide_click(claim(40), None, now)
            local = e.billing.clock.at(now)
            rows, _ = await reports.campaign_rows(e.r, CMP, local.date(), local.date(), "hour")
            assert [r.period for r in rows] == [local.strftime("%Y-%m-%dT%H:00")]
    asyncio.run(go())



def test_buffered_impressions_count_for_caps_at_once_and_reach_redis_on_flush(redis_url, clean_redis):
    """With buffering, impressions are held in the process: this process's frequency caps see them
    at once, Redis only after flush, and a flush writes each count exactly once."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(total=10**6, frequency_cap=5)
            billing = Billing(e.r, Clock(TZ), click_window_s=WINDOW_S, buffered=True)
            now = time.time()
            await billing.record_impressions(PUB, [(AD, CMP)] * 2, now, "reader-1")
            hour = billing.clock.hour(now)
            assert await e.r.hget(keys.stats(CMP, hour), "imp") is None  # not written yet
            states = await billing.budget_states([CMP], now, "reader-1")
            assert states[CMP].user_impressions_today == 2
            assert (await billing.budget_states([CMP], now, "reader-2"))[CMP].user_impressions_today == 0
            await billing.flush()
            await billing.flush()  # nothing pending: writes nothing more
            assert int(await e.r.hget(keys.stats(CMP, hour), "imp")) == 2
            assert int(await e.r.hget(keys.stats(CMP, hour), f"p:{PUB}:imp")) == 2
            assert (await billing.budget_states([CMP], now, "reader-1"))[CMP].user_impressions_today == 2
            assert await e.r.sismember(keys.publisher_campaigns(PUB), CMP)
    asyncio.run(go())


# ---- the billing day in Asia/Shanghai, against arithmetic written here ---------------------------
# Shanghai wall-clock times one second either side of local midnight (16:00 UTC), with the billing
# day and hour they belong to.
AROUND_MIDNIGHT = [
    ((2026, 2, 28, 23, 59, 59), "20260228", "2026022823"),
    ((2026, 3, 1, 0, 0, 0), "20260301", "2026030100"),
    ((2026, 12, 31, 23, 59, 59), "20261231", "2026123123"),
    ((2027, 1, 1, 0, 0, 1), "20270101", "2027010100"),
]


def shanghai_instant(wall: tuple[int, int, int, int, int, int]) -> float:
    """Unix seconds of a Shanghai wall-clock time: UTC+8 all year (no DST since 1991), checked against zoneinfo."""
    ts = float(calendar.timegm((*wall, 0, 0, 0)) - 8 * 3600)
    assert datetime(*wall, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp() == ts
    assert datetime.fromtimestamp(ts, UTC) == datetime(*wall, tzinfo=UTC) - timedelta(hours=8)
    return ts


@pytest.mark.parametrize("wall,day,hour", AROUND_MIDNIGHT, ids=[d for _, d, _ in AROUND_MIDNIGHT])
def test_billing_day_and_hour_are_shanghais_around_midnight(wall, day, hour):
    """An instant a second either side of Shanghai midnight gets the Shanghai day and hour, not UTC's."""
    ts = shanghai_instant(wall)
    clock = Clock(TZ)
    assert (clock.day(ts), clock.hour(ts)) == (day, hour)


@pytest.mark.parametrize("wall,day,hour", AROUND_MIDNIGHT, ids=[d for _, d, _ in AROUND_MIDNIGHT])
def test_a_click_around_shanghai_midnight_is_spent_and_reported_on_the_shanghai_day(redis_url, clean_redis,
                                                                                     wall, day, hour):
    """A click a second either side of Shanghai midnight counts in that Shanghai day's spend, hour and report row."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(daily=1000)
            ts = shanghai_instant(wall)
            assert (await e.billing.decide_click(claim(70, issued=ts - 5), None, ts)).charged
            assert int(await e.r.get(keys.spend_day(CMP, day)) or 0) == 70
            assert (await e.r.hgetall(keys.stats(CMP, hour)))["spend"] == "70"
            [entry] = await e.ledger()
            assert (entry["day"], entry["hour"]) == (day, hour)
            d = date(*wall[:3])
            rows, _ = await reports.campaign_rows(e.r, CMP, d - timedelta(days=1), d + timedelta(days=1), "day")
            assert [(r.period, r.spend_fen) for r in rows] == [(d.isoformat(), 70)]
    asyncio.run(go())


def test_the_apps_billing_clock_is_shanghais_by_default(client):
    """The running app's billing clock puts an instant just after Shanghai midnight on the new Shanghai day."""
    clock = client.app.state.ctx.billing.clock
    for wall, day, hour in AROUND_MIDNIGHT:
        ts = shanghai_instant(wall)
        assert (clock.day(ts), clock.hour(ts)) == (day, hour)


@given(ts=st.floats(min_value=0, max_value=4e9, allow_nan=False),
       tz=st.sampled_from(["Asia/Shanghai", "America/New_York", "Asia/Kolkata", "UTC"]))
def test_clock_labels_are_those_of_the_local_time(ts: float, tz: str) -> None:
    """The cached per-second labels agree with converting the instant itself (DST zones included)."""
    clock = Clock(tz)
    t = clock.at(ts)
    assert clock.day(ts) == t.strftime("%Y%m%d")
    assert clock.hour(ts) == t.strftime("%Y%m%d%H")
    assert clock.minute(ts) == t.strftime("%Y%m%d%H%M")
    assert clock.day_elapsed(ts) == (t.hour * 3600 + t.minute * 60 + t.second) / 86400


def test_a_large_flush_writes_every_count_once_and_drops_only_a_key_redis_refuses(redis_url, clean_redis, caplog):
    """More keys than one pipeline chunk: every count lands exactly once; a key of the wrong type
    in Redis is logged and dropped, not retried forever, and does not stop the other keys."""
    from service.billing.billing import FLUSH_CHUNK

    async def go() -> None:
        async with env(redis_url) as e:
            billing = Billing(e.r, Clock(TZ), click_window_s=WINDOW_S, buffered=True)
            now = time.time()
            hour = billing.clock.hour(now)
            cids = [f"c{i}" for i in range(FLUSH_CHUNK * 4 + 5)]
            bad = FLUSH_CHUNK + 3  # in the second pipeline
            await e.r.set(keys.stats(cids[bad], hour), "not a hash")
            await billing.record_impressions(PUB, [(f"ad-{c}", c) for c in cids], now, "reader-1")
            await billing.record_impressions(PUB, [(f"ad-{c}", c) for c in cids[:3]], now, "reader-1")
            await billing.flush()
            await billing.flush()
            for i, c in enumerate(cids):
                if i == bad:
                    continue
                stats = await e.r.hgetall(keys.stats(c, hour))
                assert stats == {"imp": str(2 if i < 3 else 1), f"a:ad-{c}:imp": str(2 if i < 3 else 1),
                                 f"p:{PUB}:imp": str(2 if i < 3 else 1)}
                assert 0 < await e.r.ttl(keys.stats(c, hour)) <= 400 * 86400
            assert await e.r.get(keys.stats(cids[bad], hour)) == "not a hash"
            assert "dropped" in caplog.text
            freq = await e.r.hgetall(keys.frequency(billing.pseudonym("reader-1"), billing.clock.day(now)))
            assert freq == {c: str(2 if i < 3 else 1) for i, c in enumerate(cids)}
            assert await e.r.scard(keys.publisher_campaigns(PUB)) == len(cids)
    asyncio.run(go())


def test_a_users_impressions_are_read_for_capped_campaigns_only_and_every_time(redis_url, clean_redis):
    """Frequency caps hold across processes (another process's written impressions count at once,
    even while the budget state is reused), and a request whose campaigns are all known and
    uncapped reads nothing from Redis."""
    async def calls(r: object, command: str) -> int:
        stats = await r.info("commandstats")  # type: ignore[attr-defined]
        return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))

    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign("cmp-open", total=10**6)
            await e.campaign("cmp-capped", total=10**6, frequency_cap=2)
            billing = Billing(e.r, Clock(TZ), click_window_s=WINDOW_S, state_ttl_s=3600, buffered=True)
            other = Billing(e.r, Clock(TZ), click_window_s=WINDOW_S, buffered=False, pseudonyms=billing.pseudonyms)
            now = time.time()
            first = await billing.budget_states(["cmp-open", "cmp-capped"], now, "reader-1")
            assert first["cmp-capped"].user_impressions_today == 0
            before = await calls(e.r, "hmget")
            again = await billing.budget_states(["cmp-open"], now, "reader-1")  # known, uncapped: no call
            assert again["cmp-open"].frequency_cap is None
            assert await calls(e.r, "hmget") == before
            await other.record_impressions(PUB, [(AD, "cmp-capped")] * 2, now, "reader-1")  # another process
            capped = await billing.budget_states(["cmp-open", "cmp-capped"], now, "reader-1")
            assert capped["cmp-capped"].user_impressions_today == 2  # read again although the state was reused
            assert not may_enter(capped["cmp-capped"], 100, 0.5, 0.0)  # the cap of 2 is reached
            assert may_enter(capped["cmp-open"], 100, 0.5, 0.0)
            assert await calls(e.r, "hmget") == before + 1
    asyncio.run(go())


def test_states_in_use_are_refreshed_ahead_and_a_charge_here_is_never_hidden_by_a_refresh(redis_url, clean_redis):
    """A state used when over half its reuse time old is read again in the background
    (BudgetStates.refresh_due), so the next auction sees another process's spend without a read of
    its own; a state not used since is not read; a read that began before a charge here dropped the
    state is not kept."""
    async def evals(r: aioredis.Redis) -> int:
        return int((await r.info("commandstats")).get("cmdstat_eval", {}).get("calls", 0))

    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign("cmp-a", total=10**6)
            await e.campaign("cmp-b", total=10**6)
            billing = Billing(e.r, Clock(TZ), click_window_s=WINDOW_S, state_ttl_s=2.0)
            now = time.time()
            day = billing.clock.day(now)
            assert (await billing.budget_states(["cmp-a", "cmp-b"], now, None))["cmp-a"].spent_today_fen == 0
            await asyncio.sleep(1.6)  # over three quarters of 2 s
            await billing.budget_states(["cmp-a"], now, None)  # used: due; cmp-b is not
            await e.r.incrby(keys.spend_day("cmp-a", day), 70)  # another process's charge
            assert await billing.states.refresh_due() == 1
            assert await billing.states.refresh_due() == 0  # nothing due any more
            before = await evals(e.r)
            assert (await billing.budget_states(["cmp-a"], now, None))["cmp-a"].spent_today_fen == 70
            assert await evals(e.r) == before  # seen without a read on the request path

            # a refresh that began before a charge here dropped the state: its reply is not kept
            await asyncio.sleep(1.6)
            await billing.budget_states(["cmp-a"], now, None)
            states = billing.states
            real_read = states._read

            def read_then_charge(p, cid, d):  # noqa: ANN001 - the charge lands while the read is in flight
                real_read(p, cid, d)
                states.drop(cid, d)
            states._read = read_then_charge  # type: ignore[method-assign]
            await e.r.incrby(keys.spend_day("cmp-a", day), 30)
            assert await states.refresh_due() == 1
            states._read = real_read  # type: ignore[method-assign]
            before = await evals(e.r)
            assert (await billing.budget_states(["cmp-a"], now, None))["cmp-a"].spent_today_fen == 100
            assert await evals(e.r) == before + 1  # read on the request path: the refreshed reply was not kept
    asyncio.run(go())
