"""Viewable impressions: an ad at least 50 % in view for at least one second (the MRC display
standard), reported by the tag's beacon with the impression's signed token.

Contract: :meth:`Views.record` counts an impression once however often its beacon arrives (one
Lua script over the campaign's ``{c:ID}`` keys: ``viewed:<day>`` and ``stats:<hour>`` of the
impression's issue time, so a report row's viewability compares views with that row's
impressions). Tokens are the click tokens: only impressions we served can be counted.
"""

from __future__ import annotations

from importlib import resources

import redis.asyncio as aioredis

from service.billing.billing import STATS_TTL_S, Clock
from service.billing.clicks import ClickClaim
from service.store import keys


class Views:
    def __init__(self, r: aioredis.Redis, clock: Clock, *, window_s: float) -> None:
        self._script = r.register_script(resources.files("service.tag.lua").joinpath("view.lua").read_text("utf-8"))
        self._clock = clock
        self._window_s = window_s
        self._viewed_ttl = int(window_s) + 2 * 86400

    def in_window(self, claim: ClickClaim, now: float) -> bool:
        """A beacon comes while the page is open: later than the click window it is not counted."""
        return 0 <= now - claim.issued <= self._window_s

    async def record(self, claim: ClickClaim) -> bool:
        """Count the impression of ``claim`` as viewable; False when it had been counted already."""
        day, hour = self._clock.day(claim.issued), self._clock.hour(claim.issued)
        done = await self._script(keys=[keys.viewed(claim.cmp, day), keys.stats(claim.cmp, hour)],
                                  args=[claim.imp, claim.ad, claim.pub, self._viewed_ttl, STATS_TTL_S])
        return bool(int(done))
