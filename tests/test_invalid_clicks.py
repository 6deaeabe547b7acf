"""Invalid clicks against the real Redis: they never use up an impression, and repeats of one are
counted rather than appended to the ledger (service/billing/lua/click.lua).

The oracle is a few lines of Python replaying the rules in order: a click on an impression
already charged is a duplicate; otherwise a pre-decided reason, else a budget check, else a charge.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from matching.click_rules import InvalidReason
from service.billing import ledger, reports
from service.store import keys
from tests.test_billing import ADV, CMP, PUB, claim, env

PRE_REASONS = [InvalidReason.BOT, InvalidReason.TOO_FAST, InvalidReason.RATE_LIMITED, InvalidReason.EXPIRED]


@pytest.mark.parametrize("first", PRE_REASONS, ids=[r.value for r in PRE_REASONS])
def test_an_invalid_click_then_the_readers_click_charges_the_reader_once(redis_url, clean_redis, first):
    """A crawler's, too-fast, rate-limited or expired click leaves the impression for the reader's click, charged once."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(total=100_000)
            c, now = claim(80), time.time()
            before = await e.billing.decide_click(c, first, now)
            reader = await e.billing.decide_click(c, None, now + 2)
            again = await e.billing.decide_click(c, None, now + 3)
            assert (before.charged, before.reason) == (False, first.value)
            assert (reader.charged, reader.amount_fen, reader.reason) == (True, 80, "valid")
            assert (again.charged, again.reason) == (False, "duplicate")
            assert await e.spend() == 80
            assert [x["reason"] for x in await e.ledger()] == [first.value, "valid", "duplicate"]
            assert (await ledger.verify(e.r)).ok
    asyncio.run(go())


def test_a_budget_refusal_does_not_use_up_the_impression(redis_url, clean_redis):
    """A click refused for budget is charged later on the same impression once the budget allows it."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(total=50)
            c, now = claim(80), time.time()
            assert (await e.billing.decide_click(c, None, now)).reason == "budget_exhausted"
            await e.store.update_campaign(ADV, CMP, {"total_budget_fen": 500})
            assert (await e.billing.decide_click(c, None, now + 1)).charged
            assert await e.spend() == 80
    asyncio.run(go())


def test_ten_thousand_replays_of_one_click_add_at_most_one_ledger_entry_per_reason(redis_url, clean_redis):
    """10,000 replays of one click URL (bots, too fast, rate limited, then the reader, then duplicates)
    append at most one ledger entry per reason plus the charge; every replay is counted in the report."""
    reasons = ([InvalidReason.BOT] * 3000 + [InvalidReason.TOO_FAST] * 2000 + [InvalidReason.RATE_LIMITED] * 1000
               + [None] + [InvalidReason.BOT] * 999 + [None] * 3000)
    assert len(reasons) == 10_000

    async def go() -> None:
        async with env(redis_url, max_connections=16) as e:
            await e.campaign(total=10**6)
            c, now = claim(90), time.time()
            await e.billing.record_impressions(PUB, [(c.ad, CMP)], now, None)
            before = await e.r.xlen(keys.ledger(CMP))
            for start in range(0, len(reasons), 500):  # in order, 500 at a time in flight
                await asyncio.gather(*(e.billing.decide_click(c, r, now) for r in reasons[start:start + 500]))
            added = await e.r.xlen(keys.ledger(CMP)) - before
            # bot, too_fast, rate_limited, valid, duplicate: 5 entries, whatever the number of replays
            assert added == 5
            assert Counter(x["reason"] for x in await e.ledger()) == \
                {"bot": 1, "too_fast": 1, "rate_limited": 1, "valid": 1, "duplicate": 1}
            assert await e.spend() == 90
            day = e.billing.clock.at(now).date()
            _, total = await reports.campaign_rows(e.r, CMP, day, day, "day")
            assert total.clicks == 1
            assert total.invalid_clicks == {"bot": 3000, "too_fast": 2000, "rate_limited": 1000,
                                            "duplicate": 999 + 3000}
            _, ptotal = await reports.publisher_rows(e.r, PUB, day, day, "day", 0.5)
            assert ptotal.invalid_clicks == total.invalid_clicks
            assert (await ledger.verify(e.r)).ok
    asyncio.run(go())


_outcome = st.one_of(st.none(), st.sampled_from(PRE_REASONS))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(clicks=st.lists(_outcome, min_size=1, max_size=25), affordable=st.booleans())
@example(clicks=[InvalidReason.BOT, None], affordable=True)  # the crawler, then the reader
@example(clicks=[InvalidReason.TOO_FAST, None], affordable=True)
def test_clicks_on_one_impression_follow_the_sequential_oracle(redis_url, clean_redis, clicks, affordable):
    """Any sequence of clicks on one impression charges the first genuine one (if the budget allows)
    and appends exactly the first click of each outcome to the ledger, in order."""
    clean_redis.flushdb()
    price = 40
    charged = False
    expected: list[str] = []
    counts: Counter[str] = Counter()
    for pre in clicks:  # the oracle
        if charged:
            reason = "duplicate"
        elif pre is not None:
            reason = pre.value
        elif not affordable:
            reason = "budget_exhausted"
        else:
            reason, charged = "valid", True
        counts[reason] += 1
        if counts[reason] == 1:
            expected.append(reason)

    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(total=100 if affordable else 10)
            c, now = claim(price), time.time()
            got = [await e.billing.decide_click(c, pre, now) for pre in clicks]
            assert [d.reason for d in got if d.times == 1] == expected
            assert [x["reason"] for x in await e.ledger()] == expected
            assert await e.spend() == (price if charged else 0)
            assert sum(d.charged for d in got) == int(charged)
            stats = await e.r.hgetall(keys.stats(CMP, e.billing.clock.hour(now)))
            for reason, n in counts.items():
                if reason != "valid":
                    assert int(stats.get(f"inv:{reason}", 0)) + int(stats.get(f"rep:{reason}", 0)) == n
            assert (await ledger.verify(e.r)).ok
    asyncio.run(go())
