"""Pay-per-click accounting in Redis: impressions, budget states, click decisions.

Every read-check-write on money is one Lua script (service/lua/click.lua) over one campaign's
hash-tagged keys; see :mod:`service.keys` for the schema. Days and hours are in the billing
timezone (settings.timezone).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from matching.click_rules import InvalidReason
from matching.pacing import BudgetState
from service import keys
from service.clicks import ClickClaim

STATS_TTL_S = 400 * 86400  # reports reach back over a year
DAY_SPEND_TTL_S = 3 * 86400
UNLIMITED = keys.UNLIMITED


def _lua(name: str) -> str:
    return resources.files("service.lua").joinpath(name).read_text("utf-8")


@dataclass(frozen=True, slots=True)
class ClickDecision:
    charged: bool
    amount_fen: int
    reason: str  # "valid" or an InvalidReason value


class Clock:
    """Billing days and hours in one timezone."""

    def __init__(self, tz: str) -> None:
        self.tz = ZoneInfo(tz)

    def at(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, self.tz)

    def day(self, ts: float) -> str:
        return self.at(ts).strftime("%Y%m%d")

    def hour(self, ts: float) -> str:
        return self.at(ts).strftime("%Y%m%d%H")

    def minute(self, ts: float) -> str:
        return self.at(ts).strftime("%Y%m%d%H%M")

    def day_elapsed(self, ts: float) -> float:
        t = self.at(ts)
        return (t.hour * 3600 + t.minute * 60 + t.second) / 86400


def client_id(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:24]


class Billing:
    def __init__(self, r: aioredis.Redis, clock: Clock, *, click_window_s: float) -> None:
        self.r = r
        self.clock = clock
        self._click = r.register_script(_lua("click.lua"))
        self._rate = r.register_script(_lua("rate_limit.lua"))
        self._clicked_ttl = int(click_window_s) + 2 * 86400

    async def budget_states(self, campaign_ids: Iterable[str], now: float,
                            user_key: str | None) -> dict[str, BudgetState]:
        """Budget, spend and frequency state of each campaign, in one round trip."""
        cids = sorted(set(campaign_ids))
        if not cids:
            return {}
        day = self.clock.day(now)
        user = client_id(user_key) if user_key else None
        async with self.r.pipeline(transaction=False) as p:
            for cid in cids:
                p.hmget(keys.budget(cid), "daily", "total", "pacing", "freq_cap")
                p.get(keys.spend_total(cid))
                p.get(keys.spend_day(cid, day))
                if user:
                    p.hget(keys.frequency(cid, day), user)
            raw = await p.execute()
        out: dict[str, BudgetState] = {}
        step = 4 if user else 3
        for i, cid in enumerate(cids):
            (daily, total, pacing, cap), spent_total, spent_day = raw[i * step: i * step + 3]
            seen = raw[i * step + 3] if user else None
            if daily is None or total is None:
                # no budget hash: nothing can be charged, so the campaign takes no part
                out[cid] = BudgetState(0, 0, 0, 0)
                continue
            out[cid] = BudgetState(
                daily_budget_fen=None if int(daily) == UNLIMITED else int(daily),
                total_budget_fen=None if int(total) == UNLIMITED else int(total),
                spent_today_fen=int(spent_day or 0), spent_total_fen=int(spent_total or 0),
                even_pacing=pacing == "even",
                frequency_cap=None if cap is None or int(cap) == UNLIMITED else int(cap),
                user_impressions_today=int(seen or 0))
        return out

    async def record_impressions(self, publisher_id: str, shown: Sequence[tuple[str, str]], now: float,
                                 user_key: str | None) -> None:
        """Count one impression per (ad id, campaign id) shown, by hour; frequency by user and day."""
        if not shown:
            return
        hour, day = self.clock.hour(now), self.clock.day(now)
        user = client_id(user_key) if user_key else None
        async with self.r.pipeline(transaction=False) as p:
            for ad_id, cid in shown:
                h = keys.stats(cid, hour)
                p.hincrby(h, "imp", 1)
                p.hincrby(h, f"a:{ad_id}:imp", 1)
                p.hincrby(h, f"p:{publisher_id}:imp", 1)
                p.expire(h, STATS_TTL_S)
                p.sadd(keys.publisher_campaigns(publisher_id), cid)
                if user:
                    f = keys.frequency(cid, day)
                    p.hincrby(f, user, 1)
                    p.expire(f, 2 * 86400)
            await p.execute()

    async def over_rate_limit(self, clients: Iterable[str], now: float, per_minute: int, per_hour: int) -> bool:
        """Count a click for each client id (IP, user key); True if any is over its limit."""
        minute, hour = self.clock.minute(now), self.clock.hour(now)
        over = False
        for c in clients:
            cid = client_id(c)
            hit = await self._rate(keys=[keys.rate_minute(cid, minute), keys.rate_hour(cid, hour)],
                                   args=[per_minute, per_hour])
            over = over or bool(int(hit))
        return over

    async def decide_click(self, claim: ClickClaim, pre_reason: InvalidReason | None, now: float) -> ClickDecision:
        """Run the click script: charge the auction price once, or record why not."""
        issue_day = self.clock.day(claim.issued)
        day, hour = self.clock.day(now), self.clock.hour(now)
        res = await self._click(
            keys=[keys.clicked(claim.cmp, issue_day), keys.budget(claim.cmp), keys.spend_total(claim.cmp),
                  keys.spend_day(claim.cmp, day), keys.stats(claim.cmp, hour), keys.ledger(claim.cmp)],
            args=[claim.imp, claim.price, pre_reason.value if pre_reason else "", claim.ad, claim.pub,
                  int(now * 1000), day, hour, self._clicked_ttl, STATS_TTL_S, DAY_SPEND_TTL_S])
        charged, amount, reason = res
        return ClickDecision(charged=bool(int(charged)), amount_fen=int(amount), reason=str(reason))
