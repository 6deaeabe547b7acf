"""Viewable impressions: an ad at least 50 % in view for at least one second (the MRC display
standard), reported by the tag's beacon with the impression's signed token.

Contract: :meth:`Views.record` counts an impression once however often its beacon arrives (one
Lua script over the campaign's ``{c:ID}`` keys: ``viewed:<day>`` and ``stats:<hour>`` of the
impression's issue time, so a report row's viewability compares views with that row's
impressions). Tokens are the click tokens: only impressions we served can be counted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from importlib import resources
from typing import Any

import redis.asyncio as aioredis

from service.billing.billing import STATS_TTL_S, Clock
from service.billing.clicks import ClickClaim
from service.store import keys


class Views:
    def __init__(self, r: aioredis.Redis, clock: Clock, *, window_s: float) -> None:
        self._r = r
        self._script = r.register_script(resources.files("service.tag.lua").joinpath("view.lua").read_text("utf-8"))
        self._clock = clock
        self._window_s = window_s
        self._viewed_ttl = int(window_s) + 2 * 86400

    def in_window(self, claim: ClickClaim, now: float) -> bool:
        """A beacon comes while the page is open: later than the click window it is not counted."""
        return 0 <= now - claim.issued <= self._window_s

    def _call(self, claim: ClickClaim, client: Any = None) -> Awaitable[Any]:
        day, hour = self._clock.day(claim.issued), self._clock.hour(claim.issued)
        return self._script(keys=[keys.viewed(claim.cmp, day), keys.stats(claim.cmp, hour)],
                            args=[claim.imp, claim.ad, claim.pub, self._viewed_ttl, STATS_TTL_S], client=client)

    async def record(self, claim: ClickClaim) -> bool:
        """Count the impression of ``claim`` as viewable; False when it had been counted already."""
        return bool(int(await self._call(claim)))

    async def record_many(self, claims: Sequence[ClickClaim]) -> int:
        """:meth:`record` for each of ``claims``, in one pipeline (the demo's replayed day,
        service/demo/traffic.py); how many were counted now."""
        if not claims:
            return 0
        async with self._r.pipeline(transaction=False) as p:
            for claim in claims:
                await self._call(claim, p)  # queued
            return sum(int(done) for done in await p.execute())
