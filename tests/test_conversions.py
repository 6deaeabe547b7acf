"""Conversions against the real Redis: attribution to a click, the reasons a conversion is not
counted, idempotency by order id, the CPA charge within budgets, and ledger verification.

Each test flushes the database, creates its campaign through :class:`CatalogStore` (so the budget
hash is mirrored as in production), decides clicks with :meth:`Billing.decide_click` and records
conversions with :class:`service.conversions.recorder.Conversions`.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import redis.asyncio as aioredis

from matching.click_rules import InvalidReason
from matching.conversions import ConversionReason, click_id
from service.billing import ledger
from service.billing.billing import Billing, Clock
from service.billing.clicks import ClickClaim
from service.conversions.recorder import Conversions
from service.store import keys
from service.store.catalog import CatalogStore

TZ = "Asia/Shanghai"
DAY = 86400.0
ADV, OTHER, CMP, AD, PUB = "adv1", "adv2", "cmp1", "ad1", "pub1"


@dataclass
class Env:
    r: aioredis.Redis
    billing: Billing
    conv: Conversions
    store: CatalogStore

    async def campaign(self, *, daily: int | None = None, total: int | None = None, cpa: tuple[str, int] | None = None,
                       cid: str = CMP, adv: str = ADV) -> str:
        if not await self.r.exists(keys.advertiser(adv)):
            await self.store.create_advertiser("广告主", id=adv)
        await self.store.create_campaign(adv, name=cid, id=cid, daily_budget_fen=daily, total_budget_fen=total,
                                         cpa_event=cpa[0] if cpa else None, cpa_bid_fen=cpa[1] if cpa else None)
        return cid

    async def click(self, price: int, *, cpa: str = "", at: float | None = None, reason: InvalidReason | None = None,
                    cid: str = CMP, adv: str = ADV, kw: str = "手机套餐", cat: str = "IAB19") -> str:
        """A click decided at ``at`` (default now); returns its click id."""
        at = time.time() if at is None else at
        c = ClickClaim(imp=uuid.uuid4().hex, ad=AD, cmp=cid, adv=adv, pub=PUB, price=price, issued=at - 5,
                       url="https://shop.example.com/p", kw=kw, cat=cat, cpa=cpa)
        await self.billing.decide_click(c, reason, at)
        return click_id(c.imp, cid)

    async def spend(self, cid: str = CMP) -> int:
        return int(await self.r.get(keys.spend_total(cid)) or 0)

    async def stats(self, now: float, cid: str = CMP) -> dict[str, str]:
        return await self.r.hgetall(keys.stats(cid, self.billing.clock.hour(now)))


@asynccontextmanager
async def env(url: str, *, window_s: float = 7 * DAY, max_connections: int | None = None) -> AsyncIterator[Env]:
    if max_connections:
        r = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
            url, decode_responses=True, max_connections=max_connections, timeout=30))
    else:
        r = aioredis.from_url(url, decode_responses=True)
    billing = Billing(r, Clock(TZ), click_window_s=3600, attribution_window_s=window_s)
    try:
        yield Env(r, billing, Conversions(r, billing, window_s=window_s), CatalogStore(r))
    finally:
        await r.aclose()


def test_conversion_on_a_valid_click_is_counted_with_its_value_by_ad_keyword_and_category(redis_url, clean_redis):
    """A conversion naming a valid click is counted once, with its value, under the click's ad,
    keyword and page category; a CPC click's conversion charges nothing more."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(total=100_000)
            cid = await e.click(120)
            now = time.time()
            out = await e.conv.record(cid, "order", 129_900, "SO-1", advertiser=ADV, now=now)
            assert (out.counted, out.reason, out.amount_fen, out.billing) == (True, ConversionReason.COUNTED, 0, "cpc")
            s = await e.stats(now)
            assert (s["conv"], s["cval"], s["a:ad1:conv"], s["k:手机套餐:conv"], s["g:IAB19:cval"], s["p:pub1:conv"]) == \
                ("1", "129900", "1", "1", "129900", "1")
            assert await e.spend() == 120  # the click only
            assert (await e.r.hgetall(keys.conversion_counts(CMP)))["conv:order"] == "1"
    asyncio.run(go())


def test_each_reason_is_recorded_and_never_counted(redis_url, clean_redis):
    """Duplicate order, invalid click, outside the window, unknown click and another advertiser's
    click are each recorded with their reason; none is counted."""
    async def go() -> None:
        async with env(redis_url, window_s=7 * DAY) as e:
            await e.campaign(total=100_000)
            await e.campaign(cid="cmp2", adv=OTHER, total=100_000)
            now = time.time()
            good = await e.click(10)
            bot = await e.click(10, reason=InvalidReason.BOT)
            old = await e.click(10, at=now - 7 * DAY - 60)
            theirs = await e.click(10, cid="cmp2", adv=OTHER)
            assert (await e.conv.record(good, "order", 100, "A", now=now)).counted
            cases = [(good, "A", ADV, ConversionReason.DUPLICATE_ORDER),
                     (bot, "B", ADV, ConversionReason.INVALID_CLICK),
                     (old, "C", ADV, ConversionReason.OUTSIDE_WINDOW),
                     ("0123456789abcdef0123456789abcdef." + CMP, "D", ADV, ConversionReason.UNKNOWN_CLICK),
                     ("not-a-click-id", "E", None, ConversionReason.UNKNOWN_CLICK),
                     (theirs, "F", ADV, ConversionReason.OTHER_ADVERTISER)]
            for click, order, adv, reason in cases:
                out = await e.conv.record(click, "order", 100, order, advertiser=adv, now=now)
                assert (out.counted, out.reason) == (False, reason), (click, reason)
            s = await e.stats(now)
            assert s["conv"] == "1"
            assert {k: v for k, v in s.items() if k.startswith("xconv:")} == {
                "xconv:duplicate_order": "1", "xconv:invalid_click": "1", "xconv:outside_window": "1"}
            logged = Counter(f["reason"] for _, f in await e.r.xrange(keys.conversions(CMP)))
            assert logged == Counter({"counted": 1, "duplicate_order": 1, "invalid_click": 1, "outside_window": 1})
            rejected = [f["reason"] for _, f in await e.r.xrange(keys.CONVERSIONS_REJECTED)]
            assert rejected == ["unknown_click", "unknown_click", "other_advertiser"]
            assert "conv" not in await e.stats(now, "cmp2")  # the other advertiser's campaign is untouched
    asyncio.run(go())


def test_a_rejected_order_id_stays_free_for_a_valid_click(redis_url, clean_redis):
    """An order first sent with an invalid click is counted when it comes with a valid one; an
    order counted on one campaign's click is a duplicate on another campaign of the advertiser."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(total=100_000)
            await e.campaign(cid="cmp3", total=100_000)
            bot, good, other = (await e.click(10, reason=InvalidReason.BOT), await e.click(10),
                                await e.click(10, cid="cmp3"))
            assert (await e.conv.record(bot, "lead", 0, "L-1")).reason == ConversionReason.INVALID_CLICK
            assert (await e.conv.record(good, "lead", 0, "L-1")).counted
            assert (await e.conv.record(other, "lead", 0, "L-1")).reason == ConversionReason.DUPLICATE_ORDER
    asyncio.run(go())


def test_conversion_at_the_window_boundary(redis_url, clean_redis):
    """A conversion exactly the window after its click is counted; a millisecond later it is not."""
    async def go() -> None:
        async with env(redis_url, window_s=DAY) as e:
            await e.campaign(total=100_000)
            t0 = float(int(time.time()) - 2 * 86400)
            a, b = await e.click(10, at=t0), await e.click(10, at=t0)
            assert (await e.conv.record(a, "order", 0, "X", now=t0 + DAY)).counted
            late = await e.conv.record(b, "order", 0, "Y", now=t0 + DAY + 0.001)
            assert late.reason == ConversionReason.OUTSIDE_WINDOW
    asyncio.run(go())


def test_pixel_without_order_counts_once_per_click_and_event(redis_url, clean_redis):
    """Without an order id a click's conversion of one event counts once (a reloaded pixel does
    not count again); another event on the same click counts."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(total=100_000)
            cid = await e.click(10)
            outs = [await e.conv.record(cid, "lead", 0, None) for _ in range(3)]
            assert [o.reason for o in outs] == [ConversionReason.COUNTED] + [ConversionReason.DUPLICATE_ORDER] * 2
            assert (await e.conv.record(cid, "conversation_started", 0, None)).counted
    asyncio.run(go())


# ---- pay per conversion ---------------------------------------------------------------------------

def test_cpa_click_is_free_and_its_conversion_is_charged_the_auction_price(redis_url, clean_redis):
    """A CPA ad's click charges 0; a conversion of its event charges its price once (ledger entry
    kind=conv), another event is counted but not charged, and ledger verify agrees."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(total=100_000, cpa=("order", 5000))
            cid = await e.click(2401, cpa="order")
            assert await e.spend() == 0
            now = time.time()
            lead = await e.conv.record(cid, "lead", 0, "L-9", advertiser=ADV, now=now)
            assert (lead.counted, lead.amount_fen, lead.billing) == (True, 0, "other_event")
            out = await e.conv.record(cid, "order", 9900, "O-9", advertiser=ADV, now=now)
            assert (out.counted, out.amount_fen, out.billing) == (True, 2401, "charged")
            again = await e.conv.record(cid, "order", 9900, "O-9", advertiser=ADV, now=now)
            assert (again.counted, again.amount_fen, again.reason) == (False, 0, ConversionReason.DUPLICATE_ORDER)
            assert await e.spend() == 2401
            s = await e.stats(now)
            assert (s["spend"], s["cspend"], s["a:ad1:spend"], s["k:手机套餐:spend"], s["p:pub1:spend"]) == \
                ("2401", "2401", "2401", "2401", "2401")
            entries = [f for _, f in await e.r.xrange(keys.ledger(CMP))]
            assert [(f["reason"], f["amount"], f.get("kind")) for f in entries] == \
                [("valid", "0", None), ("valid", "2401", "conv")]
            v = await ledger.verify(e.r)
            assert v.ok, v.mismatches
            assert v.charged_fen == 2401
    asyncio.run(go())


def test_thousand_concurrent_postbacks_of_one_order_charge_once(redis_url, clean_redis):
    """1,000 postbacks of one order sent at once: exactly one is counted and charged."""
    async def go() -> None:
        async with env(redis_url, max_connections=50) as e:
            await e.campaign(total=1_000_000, cpa=("order", 5000))
            cid = await e.click(3000, cpa="order")
            outs = await asyncio.gather(*(e.conv.record(cid, "order", 500, "ORDER-1", advertiser=ADV)
                                          for _ in range(1000)))
            assert Counter(o.reason for o in outs) == Counter({ConversionReason.COUNTED: 1,
                                                               ConversionReason.DUPLICATE_ORDER: 999})
            assert sum(o.amount_fen for o in outs) == 3000
            assert await e.spend() == 3000
            assert len(await e.r.xrange(keys.ledger(CMP))) == 2  # the free click and the one charge
    asyncio.run(go())


def test_cpa_budget_is_never_exceeded_and_the_exact_fit_is_charged(redis_url, clean_redis):
    """With a total budget of 3 prices, 5 conversions at once charge exactly 3; the rest are counted
    but not charged (budget_exhausted), and the daily budget that fits exactly is charged in full."""
    async def go() -> None:
        async with env(redis_url, max_connections=20) as e:
            await e.campaign(total=3 * 700, cpa=("order", 1000))
            clicks = [await e.click(700, cpa="order") for _ in range(5)]
            outs = await asyncio.gather(*(e.conv.record(c, "order", 0, f"O{i}") for i, c in enumerate(clicks)))
            assert sorted(o.billing for o in outs) == ["budget_exhausted"] * 2 + ["charged"] * 3
            assert all(o.counted for o in outs)
            assert await e.spend() == 2100
        async with env(redis_url) as e:
            await e.campaign(cid="cmpd", daily=1400, cpa=("lead", 1000))
            a, b, c = [await e.click(700, cpa="lead", cid="cmpd") for _ in range(3)]
            assert (await e.conv.record(a, "lead", 0, "D1")).amount_fen == 700
            assert (await e.conv.record(b, "lead", 0, "D2")).amount_fen == 700  # 1400: fits exactly
            assert (await e.conv.record(c, "lead", 0, "D3")).billing == "budget_exhausted"
            assert await e.spend("cmpd") == 1400
    asyncio.run(go())


def _canonical_by_hand(f: dict[str, str]) -> bytes:
    """The chain's canonical encoding, written out from the README (independent of chain.py)."""
    body = "".join(f"{k}={f[k].replace(chr(92), chr(92) * 2).replace(chr(10), chr(92) + 'n')}\n"
                   for k in sorted(f) if k not in ("seq", "prev", "hash"))
    return f"admatch-ledger/1\nseq={f['seq']}\nprev={f['prev']}\n{body}".encode()


def test_cpa_charge_joins_the_click_hash_chain_and_verify_finds_no_mismatch(redis_url, clean_redis):
    """A CPA conversion's charge is appended through the same hash chain as the clicks: seq and prev
    follow the click entries, its hash is SHA-256 of the canonical encoding (an order id with a
    backslash escaped), the head moves to it, verify reports 0 mismatches; editing its amount breaks
    the chain at that entry."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign(total=100_000, cpa=("order", 5000))
            first = await e.click(1800, cpa="order")
            await e.click(1800, cpa="order", reason=InvalidReason.BOT)  # an invalid click's entry too
            out = await e.conv.record(first, "order", 9900, "SO\\42", advertiser=ADV)
            assert (out.counted, out.amount_fen) == (True, 1800)
            await e.click(1800, cpa="order")  # a click after the charge continues the same chain
            got = await e.r.xrange(keys.ledger(CMP))
            assert [(f["reason"], f["amount"], f.get("kind")) for _, f in got] == \
                [("valid", "0", None), ("bot", "0", None), ("valid", "1800", "conv"), ("valid", "0", None)]
            prev = hashlib.sha256(f"admatch-ledger/1 genesis {CMP}".encode()).hexdigest()
            for n, (_, f) in enumerate(got, start=1):
                assert (f["seq"], f["prev"]) == (str(n), prev)
                assert f["hash"] == hashlib.sha256(_canonical_by_hand(f)).hexdigest()
                prev = f["hash"]
            conv = got[2][1]
            assert (conv["event"], conv["order"]) == ("order", "SO\\42")
            assert b"order=SO\\\\42\n" in _canonical_by_hand(conv)
            head = await e.r.hgetall(keys.ledger_head(CMP))
            assert (head["seq"], head["hash"], head[f"n:{conv['day']}"]) == ("4", prev, "4")
            v = await ledger.verify(e.r)
            assert v.mismatches == []
            assert (v.chained_entries, v.unchained_entries, v.charged_fen) == (4, 0, 1800)
            # tampering with the conversion's amount (spend counter edited alike) breaks the chain there
            edited = [(i, dict(f, amount="1") if i == got[2][0] else f) for i, f in got]
            await e.r.delete(keys.ledger(CMP))
            for i, f in edited:
                await e.r.xadd(keys.ledger(CMP), f, id=i)
            await e.r.set(keys.spend_total(CMP), 1)
            v = await ledger.verify(e.r)
            assert v.broken == {CMP: got[2][0]}
    asyncio.run(go())
