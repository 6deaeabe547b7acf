"""Pay-per-click accounting in Redis: impressions, budget states, click decisions.

Every read-check-write on money is one Lua script (service/lua/click.lua) over one campaign's
hash-tagged keys; see :mod:`service.keys` for the schema. Days and hours are in the billing
timezone (settings.timezone).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
from cachetools import TTLCache

from matching.click_rules import InvalidReason
from matching.pacing import BudgetState
from service import keys
from service.clicks import ClickClaim

STATS_TTL_S = 400 * 86400  # reports reach back over a year
DAY_SPEND_TTL_S = 3 * 86400
# How long a process reuses a campaign's budget and spend for auction entry (not for charging).
STATE_TTL_S = 0.25
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


@dataclass
class _Pending:
    """Impression counts not yet written: HINCRBY amounts, key TTLs, set members."""

    incr: Counter[tuple[str, str]] = field(default_factory=Counter)
    expire: dict[str, int] = field(default_factory=dict)
    members: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def merge(self, other: _Pending) -> None:
        self.incr.update(other.incr)
        self.expire.update(other.expire)
        for k, v in other.members.items():
            self.members[k] |= v


class Billing:
    def __init__(self, r: aioredis.Redis, clock: Clock, *, click_window_s: float,
                 state_ttl_s: float = STATE_TTL_S, buffered: bool = False) -> None:
        self.r = r
        self.clock = clock
        self._click = r.register_script(_lua("click.lua"))
        self._rate = r.register_script(_lua("rate_limit.lua"))
        self._clicked_ttl = int(click_window_s) + 2 * 86400
        self._states: TTLCache[tuple[str, str], BudgetState] = TTLCache(maxsize=100_000, ttl=state_ttl_s)
        self.buffered = buffered
        self._pending = _Pending()

    def drop_cached(self) -> None:
        """Forget cached budget states and unwritten impression counts (after the data
        underneath was replaced wholesale, as tests do)."""
        self._states.clear()
        self._pending = _Pending()

    async def budget_states(self, campaign_ids: Iterable[str], now: float,
                            user_key: str | None) -> dict[str, BudgetState]:
        """Budget, spend and frequency state of each campaign, in at most one round trip.

        Budgets and spend are reused for ``state_ttl_s`` within the process (a charge here
        drops its campaign's entry at once): they decide who enters auctions, never what is
        charged — the click script checks the budget again. A user's impressions are always read.
        """
        cids = sorted(set(campaign_ids))
        if not cids:
            return {}
        day = self.clock.day(now)
        user = client_id(user_key) if user_key else None
        cached = {cid: st for cid in cids if (st := self._states.get((cid, day))) is not None}
        missing = [cid for cid in cids if cid not in cached]
        if not missing and not user:
            return cached
        async with self.r.pipeline(transaction=False) as p:
            for cid in missing:
                p.hmget(keys.budget(cid), "daily", "total", "pacing", "freq_cap")
                p.get(keys.spend_total(cid))
                p.get(keys.spend_day(cid, day))
            if user:
                for cid in cids:
                    p.hget(keys.frequency(cid, day), user)
            raw = await p.execute()
        out = dict(cached)
        for i, cid in enumerate(missing):
            (daily, total, pacing, cap), spent_total, spent_day = raw[i * 3: i * 3 + 3]
            if daily is None or total is None:
                # no budget hash: nothing can be charged, so the campaign takes no part
                out[cid] = BudgetState(0, 0, 0, 0)
                continue
            out[cid] = self._states[(cid, day)] = BudgetState(
                daily_budget_fen=None if int(daily) == UNLIMITED else int(daily),
                total_budget_fen=None if int(total) == UNLIMITED else int(total),
                spent_today_fen=int(spent_day or 0), spent_total_fen=int(spent_total or 0),
                even_pacing=pacing == "even",
                frequency_cap=None if cap is None or int(cap) == UNLIMITED else int(cap))
        if user:
            seen = raw[3 * len(missing):]
            pending = self._pending.incr
            out = {cid: dataclasses.replace(out[cid], user_impressions_today=int(n or 0)
                                            + pending.get((keys.frequency(cid, day), user), 0))
                   for cid, n in zip(cids, seen, strict=True)}
        return out

    async def record_impressions(self, publisher_id: str, shown: Sequence[tuple[str, str]], now: float,
                                 user_key: str | None) -> None:
        """Count one impression per (ad id, campaign id) shown, by hour; frequency by user and day.

        With ``buffered`` the counts gather in the process and :meth:`flush` writes them (the app
        flushes every ``ADMATCH_IMPRESSION_FLUSH_SECONDS``, before every report and at shutdown);
        this process's frequency caps count the pending impressions at once.
        """
        if not shown:
            return
        hour, day = self.clock.hour(now), self.clock.day(now)
        user = client_id(user_key) if user_key else None
        pending = self._pending
        for ad_id, cid in shown:
            h = keys.stats(cid, hour)
            pending.incr[(h, "imp")] += 1
            pending.incr[(h, f"a:{ad_id}:imp")] += 1
            pending.incr[(h, f"p:{publisher_id}:imp")] += 1
            pending.expire[h] = STATS_TTL_S
            pending.members[keys.publisher_campaigns(publisher_id)].add(cid)
            if user:
                f = keys.frequency(cid, day)
                pending.incr[(f, user)] += 1
                pending.expire[f] = 2 * 86400
        if not self.buffered:
            await self.flush()

    async def flush(self) -> None:
        """Write the pending impression counts in one pipeline (no-op when there are none)."""
        pending, self._pending = self._pending, _Pending()
        if not pending.incr:
            return
        try:
            async with self.r.pipeline(transaction=False) as p:
                for (key, field), n in pending.incr.items():
                    p.hincrby(key, field, n)
                for key, ttl in pending.expire.items():
                    p.expire(key, ttl)
                for key, members in pending.members.items():
                    p.sadd(key, *members)
                await p.execute()
        except BaseException:
            self._pending.merge(pending)  # not written: keep them for the next flush
            raise

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
        self._states.pop((claim.cmp, day), None)  # this process sees the new spend at once
        return ClickDecision(charged=bool(int(charged)), amount_fen=int(amount), reason=str(reason))
