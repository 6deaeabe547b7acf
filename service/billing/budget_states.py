"""Each campaign's budget, spend, pacing, frequency cap and way of paying, as auctions see them.

A state is read from Redis (``budget_state.lua``: one call per campaign) and reused in the
process for at most ``ttl_s``: states decide who enters auctions, never what is charged — the
click script checks the budget again. A state used when over ``DUE_AGE`` of its ``ttl_s`` old is
*due*: :meth:`BudgetStates.run` reads the due states in the background every eighth of ``ttl_s``,
in small pipelines, so a campaign that keeps being auctioned is never read on the request path again
(refresh-ahead); one not used for ``ttl_s`` expires and is read when next needed. A charge in this
process drops its campaign's state (:meth:`drop`), and a read that began before the drop is not
kept. A user's impressions (frequency caps) are never cached: see :meth:`BudgetStates.get`.

While Redis is unavailable each campaign has its last state read (none: it stays out of
auctions), and a user's impressions are this process's unwritten ones only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from cachetools import LRUCache, TTLCache

from matching.pacing import BudgetState
from service.resilience.redis_guard import STORE_DOWN
from service.store import keys

log = logging.getLogger(__name__)

UNLIMITED = keys.UNLIMITED
MAX_CAMPAIGNS = 100_000  # states kept (and due) at most
REFRESH_CHUNK = 32  # script calls per pipeline of a background refresh (each holds the loop briefly)
DUE_AGE = 0.75  # a state used when older than this share of ttl_s is read again in the background
NO_STATE = BudgetState(0, 0, 0, 0)  # no budget hash: nothing can be charged, so no auction entry


def _parse(reply: Sequence[Any]) -> BudgetState | None:
    daily, total, pacing, cap, spent_total, spent_day, cpa_event, cpa_bid = reply
    if daily is None or total is None:
        return None
    return BudgetState(
        daily_budget_fen=None if int(daily) == UNLIMITED else int(daily),
        total_budget_fen=None if int(total) == UNLIMITED else int(total),
        spent_today_fen=int(spent_day or 0), spent_total_fen=int(spent_total or 0),
        even_pacing=pacing == "even",
        frequency_cap=None if cap is None or int(cap) == UNLIMITED else int(cap),
        cpa_event=cpa_event or None, cpa_bid_fen=int(cpa_bid or 0))


class BudgetStates:
    def __init__(self, r: aioredis.Redis, *, ttl_s: float,
                 pending_frequency: Callable[[str], Mapping[str, int]]) -> None:
        """``pending_frequency``: this process's unwritten impressions under a frequency key, by
        campaign (added to what Redis holds)."""
        self.r = r
        self.ttl_s = ttl_s
        self._pending_frequency = pending_frequency
        self._script = resources.files("service.billing.lua").joinpath("budget_state.lua").read_text("utf-8")
        # (campaign, day) → (state, when read, monotonic s)
        self._states: TTLCache[tuple[str, str], tuple[BudgetState, float]] = TTLCache(
            maxsize=MAX_CAMPAIGNS, ttl=ttl_s)
        self._known: LRUCache[str, BudgetState] = LRUCache(maxsize=MAX_CAMPAIGNS)  # last read, for outages
        self._due: set[tuple[str, str]] = set()
        self._dropped: dict[tuple[str, str], float] = {}  # when a charge here dropped the state
        self.refreshed = 0  # states read in the background

    def clear(self) -> None:
        self._states.clear()
        self._known.clear()
        self._due.clear()

    def drop(self, campaign_id: str, day: str) -> None:
        """Forget a campaign's state (after a charge): the next auction reads it."""
        key = (campaign_id, day)
        self._states.pop(key, None)
        self._due.discard(key)
        self._dropped[key] = time.monotonic()

    def _keep(self, cid: str, day: str, reply: Sequence[Any], started: float) -> BudgetState:
        state = _parse(reply)
        if state is None:
            return NO_STATE
        dropped = self._dropped.get((cid, day))
        if dropped is None or dropped < started:  # a read begun before a drop here is used once, not kept
            self._states[(cid, day)] = (state, started)
        self._known[cid] = state
        return state

    def _read(self, p: Any, cid: str, day: str) -> None:
        p.eval(self._script, 3, keys.budget(cid), keys.spend_total(cid), keys.spend_day(cid, day))

    async def get(self, campaign_ids: Iterable[str], day: str, user: str | None) -> dict[str, BudgetState]:
        """Each campaign's state on ``day``, in at most one round trip (none when every state is
        held and no campaign with a frequency cap, or whose cap is not known yet, is among them).
        ``user``: the reader's pseudonym; their impressions today are read every time for those
        campaigns (set as ``user_impressions_today`` on capped campaigns only: it decides nothing
        elsewhere)."""
        cids = sorted(set(campaign_ids))
        if not cids:
            return {}
        now = time.monotonic()
        out: dict[str, BudgetState] = {}
        missing = []
        for cid in cids:
            held = self._states.get((cid, day))
            if held is None:
                missing.append(cid)
                continue
            out[cid] = held[0]
            if now - held[1] > self.ttl_s * DUE_AGE and len(self._due) < MAX_CAMPAIGNS:
                self._due.add((cid, day))
        capped = [cid for cid in cids if cid not in out or out[cid].frequency_cap is not None] if user else []
        if not missing and not capped:
            return out
        try:
            async with self.r.pipeline(transaction=False) as p:
                for cid in missing:
                    self._read(p, cid, day)
                if user and capped:
                    p.hmget(keys.frequency(user, day), capped)
                raw = await p.execute()
        except STORE_DOWN:
            out.update((cid, self._known.get(cid, NO_STATE)) for cid in missing)
            missing, raw = [], [[None] * len(capped)]  # nothing read; the user's impressions: this process's
        for cid, reply in zip(missing, raw, strict=False):
            out[cid] = self._keep(cid, day, reply, now)
        if user and capped:
            mine = self._pending_frequency(keys.frequency(user, day))
            for cid, n in zip(capped, raw[-1], strict=True):
                st = out[cid]
                if st.frequency_cap is not None:
                    out[cid] = dataclasses.replace(st, user_impressions_today=int(n or 0) + mine.get(cid, 0))
        return out

    async def refresh_due(self) -> int:
        """Read the due states again (pipelines of ``REFRESH_CHUNK``); returns how many were read.
        Raises what Redis raises (the due states stay due)."""
        due = sorted(self._due)
        now = time.monotonic()
        self._dropped = {k: t for k, t in self._dropped.items() if now - t < self.ttl_s}
        done = 0
        for start in range(0, len(due), REFRESH_CHUNK):
            chunk = due[start:start + REFRESH_CHUNK]
            began = time.monotonic()
            async with self.r.pipeline(transaction=False) as p:
                for cid, day in chunk:
                    self._read(p, cid, day)
                raw = await p.execute()
            for (cid, day), reply in zip(chunk, raw, strict=True):
                self._due.discard((cid, day))
                if _parse(reply) is None:
                    self._states.pop((cid, day), None)  # gone: the next auction reads it
                else:
                    self._keep(cid, day, reply, began)
            done += len(chunk)
        self.refreshed += done
        return done

    async def run(self) -> None:
        """Refresh the due states every eighth of ``ttl_s`` until cancelled; while Redis fails,
        states expire and auctions read them as they need them (or use the last ones known)."""
        while True:
            await asyncio.sleep(self.ttl_s / 8)
            try:
                await self.refresh_due()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - an outage or a bad reply: the request path reads
                log.debug("budget states not refreshed: %s", e)
