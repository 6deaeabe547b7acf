"""Pay-per-click accounting in Redis: impressions, budget states, click decisions.

Every read-check-write on money is one Lua script (service/billing/lua/click.lua) over one campaign's
hash-tagged keys; see :mod:`service.store.keys` for the schema. Its ledger entries are hash-chained
(:mod:`service.billing.chain`). Days and hours are in the billing
timezone (settings.timezone).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from matching.click_rules import InvalidReason
from matching.ctr import CellKey
from matching.pacing import BudgetState
from service.billing.budget_states import BudgetStates
from service.billing.chain import with_chain
from service.billing.clicks import ClickClaim
from service.billing.pseudonyms import Pseudonyms
from service.ctr import cells as ctr_cells
from service.resilience.redis_guard import STORE_DOWN
from service.store import keys

log = logging.getLogger(__name__)

STATS_TTL_S = 400 * 86400  # reports reach back over a year
DAY_SPEND_TTL_S = 3 * 86400
# How long a process reuses a campaign's budget and spend for auction entry (not for charging).
STATE_TTL_S = 1.0
# Script calls per pipeline when impression counts are written (see Billing.flush).
FLUSH_CHUNK = 16
CTR_TTL_S = 16 * 86400  # the click-through model's cells: its window (14 days) and two days more
# Click decisions that were a reader's genuine click (the click-through model counts them): charged,
# or refused only because the budget ran out.
GENUINE = frozenset({"valid", InvalidReason.BUDGET_EXHAUSTED.value})
DEFAULT_ATTRIBUTION_WINDOW_S = 7 * 86400


def _lua(name: str) -> str:
    return resources.files("service.billing.lua").joinpath(name).read_text("utf-8")


@dataclass(frozen=True, slots=True)
class ClickDecision:
    charged: bool
    amount_fen: int
    reason: str  # "valid" or an InvalidReason value
    # How many clicks on this impression have had this reason, this one included (1 when charged):
    # only the first of each invalid reason is appended to the ledger, the rest are counted.
    times: int = 1


def _second(ts: float) -> int:
    """The whole second ``ts`` falls in, after rounding to microseconds as datetime does."""
    return math.floor(round(ts, 6))


class Clock:
    """Billing days and hours in one timezone.

    The labels of a whole second are computed once (a few per match otherwise, each a
    timezone conversion and strftime)."""

    def __init__(self, tz: str) -> None:
        self.tz = ZoneInfo(tz)
        self._labels = functools.lru_cache(maxsize=8)(self._labels_of)

    def at(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, self.tz)

    def _labels_of(self, second: int) -> tuple[str, str, str, float]:
        t = self.at(second)
        minute = t.strftime("%Y%m%d%H%M")
        return minute[:8], minute[:10], minute, (t.hour * 3600 + t.minute * 60 + t.second) / 86400

    def day(self, ts: float) -> str:
        return self._labels(_second(ts))[0]

    def hour(self, ts: float) -> str:
        return self._labels(_second(ts))[1]

    def minute(self, ts: float) -> str:
        return self._labels(_second(ts))[2]

    def day_elapsed(self, ts: float) -> float:
        return self._labels(_second(ts))[3]


@dataclass
class _Pending:
    """Impression counts not yet written: hash key → field → amount, key TTLs, set members."""

    incr: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    expire: dict[str, int] = field(default_factory=dict)
    members: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def merge(self, other: _Pending) -> None:
        for k, counts in other.incr.items():
            self.incr[k].update(counts)
        self.expire.update(other.expire)
        for k, v in other.members.items():
            self.members[k] |= v


def _unwritten(pending: _Pending, keys_left: Iterable[str]) -> _Pending:
    """The part of ``pending`` under ``keys_left``."""
    out = _Pending()
    for key in keys_left:
        if key in pending.incr:
            out.incr[key] = pending.incr[key]
        if key in pending.expire:
            out.expire[key] = pending.expire[key]
        if key in pending.members:
            out.members[key] = pending.members[key]
    return out


class Billing:
    def __init__(self, r: aioredis.Redis, clock: Clock, *, click_window_s: float,
                 state_ttl_s: float = STATE_TTL_S, buffered: bool = False,
                 pseudonyms: Pseudonyms | None = None, ctr_ttl_s: int = CTR_TTL_S,
                 attribution_window_s: float = DEFAULT_ATTRIBUTION_WINDOW_S) -> None:
        """``pseudonyms``: the secret every process shares (the app passes it); None: one of this
        object's own, so frequency and rate-limit keys match no other process's. ``ctr_ttl_s``:
        how long the click-through model's day hashes are kept. ``attribution_window_s``: how long
        after a click a conversion is attributed to it (its click record is kept a day longer, so a
        late conversion is told ``outside_window``)."""
        self.r = r
        self.clock = clock
        self.pseudonyms = pseudonyms or Pseudonyms()
        self._click = r.register_script(with_chain("click.lua"))
        self._rate = r.register_script(_lua("rate_limit.lua"))
        # Sent with EVAL (the server caches it by digest): EVALSHA inside a pipeline needs a
        # SCRIPT EXISTS round trip per execute, and on a cluster per node.
        self._counters = _lua("counters.lua")
        self._clicked_ttl = int(click_window_s) + 2 * 86400
        self.click_record_ttl = int(attribution_window_s) + 86400
        self.buffered = buffered
        self.ctr_ttl_s = ctr_ttl_s
        self._pending = _Pending()
        self.states = BudgetStates(r, ttl_s=state_ttl_s,
                                   pending_frequency=lambda k: self._pending.incr.get(k) or {})

    def pseudonym(self, value: str) -> str:
        """What Redis keys and click tokens hold instead of a user key or a client's IP."""
        return self.pseudonyms.of(value)

    def drop_cached(self) -> None:
        """Forget cached budget states and unwritten impression counts (after the data
        underneath was replaced wholesale, as tests do)."""
        self.states.clear()
        self._pending = _Pending()

    async def budget_states(self, campaign_ids: Iterable[str], now: float,
                            user_key: str | None) -> dict[str, BudgetState]:
        """Budget, spend and frequency state of each campaign at ``now`` (see
        :class:`service.billing.budget_states.BudgetStates`: reused for ``state_ttl_s``, refreshed
        ahead in the background, a user's impressions read for capped campaigns every time)."""
        return await self.states.get(campaign_ids, self.clock.day(now),
                                     self.pseudonym(user_key) if user_key else None)

    async def record_impressions(self, publisher_id: str, shown: Sequence[tuple[str, str]], now: float,
                                 user_key: str | None,
                                 cells: Sequence[tuple[CellKey, float]] = (), *,
                                 contexts: Sequence[tuple[str, str]] = ()) -> None:
        """Count one impression per (ad id, campaign id) shown, by hour; frequency by user and day;
        each of ``cells`` (the click-through model's cell and the impression's relevance score) in
        its campaign's day hash; and ``contexts``, one per shown ad when given: its first matched
        keyword and the page's top category ('' none), counted for the keyword and page-category
        reports.

        With ``buffered`` the counts gather in the process and :meth:`flush` writes them (the app
        flushes every ``ADMATCH_IMPRESSION_FLUSH_SECONDS``, before every report and at shutdown);
        this process's frequency caps count the pending impressions at once.
        """
        if not shown:
            return
        hour, day = self.clock.hour(now), self.clock.day(now)
        user = self.pseudonym(user_key) if user_key else None
        pending = self._pending
        for cell, score in cells:
            k = keys.ctr_cells(cell.campaign, day)
            prefix = ctr_cells.field_prefix(cell)
            counts = pending.incr[k]
            counts[prefix + "n"] += 1
            counts[prefix + "e"] += round(score * ctr_cells.EXPOSURE_SCALE)
            pending.expire[k] = self.ctr_ttl_s
            active = keys.ctr_campaigns(day)
            pending.members[active].add(cell.campaign)
            pending.expire[active] = self.ctr_ttl_s
        for i, (ad_id, cid) in enumerate(shown):
            h = keys.stats(cid, hour)
            counts = pending.incr[h]
            counts["imp"] += 1
            counts[f"a:{ad_id}:imp"] += 1
            counts[f"p:{publisher_id}:imp"] += 1
            if contexts:
                kw, cat = contexts[i]
                if kw:
                    counts[f"k:{kw}:imp"] += 1
                if cat:
                    counts[f"g:{cat}:imp"] += 1
            pending.expire[h] = STATS_TTL_S
            pending.members[keys.publisher_campaigns(publisher_id)].add(cid)
            if user:
                f = keys.frequency(user, day)
                pending.incr[f][cid] += 1
                pending.expire[f] = 2 * 86400
        if not self.buffered:
            with contextlib.suppress(*STORE_DOWN):  # kept, and written by the app's flush loop
                await self.flush()

    def count_requested_slots(self, publisher_id: str, slots: int, now: float) -> None:
        """Count the ``slots`` a publisher's request asked for in its hour (the fill rate's
        denominator: impressions ÷ requested slots). Gathered with the impression counts and
        written by the same flush: the one this request's impressions trigger when unbuffered (or,
        when it shows none, the app's flush loop within a second); never a round trip of its own."""
        h = keys.publisher_stats(publisher_id, self.clock.hour(now))
        self._pending.incr[h]["slots"] += slots
        self._pending.expire[h] = STATS_TTL_S

    async def count_click(self, claim: ClickClaim, decision: ClickDecision) -> bool:
        """Count a reader's genuine click (charged, or refused only for budget; the first on its
        impression) in the click-through model's cell of its impression, buffered like impressions.
        False when it is not counted: another reason, a repeat, or a token without a cell."""
        if decision.reason not in GENUINE or decision.times != 1:
            return False
        cell = ctr_cells.cell_of_click(claim.cmp, claim.ad, claim.pub, claim.ctx)
        if cell is None:
            return False
        k = keys.ctr_cells(claim.cmp, self.clock.day(claim.issued))
        self._pending.incr[k][ctr_cells.field_prefix(cell) + "c"] += 1
        self._pending.expire[k] = self.ctr_ttl_s
        if not self.buffered:
            with contextlib.suppress(*STORE_DOWN):  # kept, and written by the app's flush loop
                await self.flush()
        return True

    async def flush(self) -> None:
        """Write the pending impression counts: one script call per hash key, in pipelines of at
        most ``FLUSH_CHUNK`` calls so that a large flush never holds the event loop for long
        (packing commands is CPU work). No-op when nothing is pending.

        A chunk that cannot be sent (connection lost) is kept, with every chunk after it, for the
        next flush; chunks already written are not written again. A key Redis refuses (a key of
        another type in its place) is logged and its counts dropped: retrying cannot succeed."""
        pending, self._pending = self._pending, _Pending()
        keys_ = [*pending.incr, *pending.members]
        for start in range(0, len(keys_), FLUSH_CHUNK):
            chunk = keys_[start:start + FLUSH_CHUNK]
            try:
                async with self.r.pipeline(transaction=False) as p:
                    for key in chunk:
                        if key in pending.incr:
                            counts = pending.incr[key]
                            p.eval(self._counters, 1, key, pending.expire.get(key, 0),
                                   *itertools.chain.from_iterable(counts.items()))
                        else:  # a set: SADD, then EXPIRE when it has a TTL (one reply kept per key)
                            p.sadd(key, *pending.members[key])
                    for key in chunk:
                        if key not in pending.incr and key in pending.expire:
                            p.expire(key, pending.expire[key])
                    replies = await p.execute(raise_on_error=False)
            except BaseException:
                self._pending.merge(_unwritten(pending, keys_[start:]))  # kept for the next flush
                raise
            for key, reply in zip(chunk, replies[:len(chunk)], strict=True):
                if isinstance(reply, Exception):
                    log.error("impression counts for %s dropped: %s", key, reply)

    def drop_state(self, campaign_id: str, day: str) -> None:
        """Forget a campaign's cached budget state (after a charge outside the click script)."""
        self.states.drop(campaign_id, day)

    async def over_rate_limit(self, clients: Iterable[str], now: float, per_minute: int, per_hour: int) -> bool:
        """Count a click for each client id (IP, user key); True if any is over its limit."""
        minute, hour = self.clock.minute(now), self.clock.hour(now)
        over = False
        for c in clients:
            cid = self.pseudonym(c)
            hit = await self._rate(keys=[keys.rate_minute(cid, minute), keys.rate_hour(cid, hour)],
                                   args=[per_minute, per_hour])
            over = over or bool(int(hit))
        return over

    async def decide_click(self, claim: ClickClaim, pre_reason: InvalidReason | None, now: float) -> ClickDecision:
        """Run the click script: charge the auction price once, or record why not.

        Only a charged click uses up the impression; an invalid one (``pre_reason``, or a budget
        refusal) leaves a later genuine click on it chargeable. Idempotent for a charged
        impression: deciding it again gives ``duplicate`` and charges nothing. A CPA ad's click
        (``claim.cpa``) is decided alike at price 0; its price is charged per conversion
        (:mod:`service.conversions`). Either way the click is recorded for conversions."""
        issue_day = self.clock.day(claim.issued)
        day, hour = self.clock.day(now), self.clock.hour(now)
        cmp = claim.cmp
        res = await self._click(
            keys=[keys.clicked(cmp, issue_day), keys.budget(cmp), keys.spend_total(cmp),
                  keys.spend_day(cmp, day), keys.stats(cmp, hour), keys.ledger(cmp),
                  keys.invalid_clicks(cmp, issue_day), keys.ledger_head(cmp),
                  keys.click_record(cmp, claim.imp), keys.conversion_counts(cmp)],
            args=[claim.imp, 0 if claim.cpa else claim.price, pre_reason.value if pre_reason else "",
                  claim.ad, claim.pub, int(now * 1000), day, hour, self._clicked_ttl, STATS_TTL_S,
                  DAY_SPEND_TTL_S, cmp, claim.kw, claim.cat, claim.adv, claim.cpa,
                  claim.price if claim.cpa else 0, self.click_record_ttl])
        charged, amount, reason, times = res
        self.states.drop(cmp, day)  # this process sees the new spend at once
        return ClickDecision(charged=bool(int(charged)), amount_fen=int(amount), reason=str(reason),
                             times=int(times))
