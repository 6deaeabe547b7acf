"""Back-off and once-per-change logging for the background loops that talk to Redis (catalog
feed, impression flush, click spool): a Redis outage is one log line when it starts and one when
it ends, never a traceback per round."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from service.resilience.redis_guard import STORE_DOWN

# Longest pause between rounds of a failing loop: Redis coming back is noticed within this long.
MAX_BACKOFF_S = 2.0


class LoopHealth:
    """What a loop does after each round: :meth:`ok` or :meth:`failed` return how long to sleep.

    Failing rounds double the pause from ``interval`` up to ``max_interval``. The first failure
    is logged (with its traceback unless Redis is merely unavailable, which the breaker reports),
    a failure of another kind is logged again, and the first success after failures is logged
    with how long the loop was failing.
    """

    def __init__(self, name: str, interval: float, logger: logging.Logger, *,
                 max_interval: float = MAX_BACKOFF_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.interval = interval
        self.max_interval = max(max_interval, interval)
        self._log = logger
        self._clock = clock
        self._delay = interval
        self._failing: str | None = None  # the kind of failure, while failing
        self._since = 0.0

    @property
    def failing(self) -> bool:
        return self._failing is not None

    def ok(self) -> float:
        if self._failing is not None:
            self._log.warning("%s resumed after %.1f s", self.name, self._clock() - self._since)
            self._failing = None
        self._delay = self.interval
        return self._delay

    def failed(self, exc: BaseException) -> float:
        store_down = isinstance(exc, STORE_DOWN)
        kind = "store_down" if store_down else type(exc).__name__
        if self._failing is None:
            self._since = self._clock()
        if kind != self._failing:
            what = "Redis unavailable" if store_down else "failed"
            self._log.warning("%s paused: %s (%s); retrying with back-off up to %.1f s", self.name, what, exc,
                              self.max_interval, exc_info=None if store_down else exc)
            self._failing = kind
            self._delay = self.interval
        self._delay = min(self._delay * 2, self.max_interval)
        return self._delay
