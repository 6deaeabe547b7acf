"""A dependency's failures logged once per change of state, not once per attempt.

A flush every 0.1 s or a profile read per request against a Redis that is down would otherwise
write thousands of identical lines; the log says when it broke, why, and when it worked again."""

from __future__ import annotations

import logging


class Outage:
    """``failed`` logs a warning when ``what`` starts failing; ``ok`` logs when it works again."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self._log = log
        self._what = what
        self.down = False

    def failed(self, exc: BaseException) -> None:
        if not self.down:
            self.down = True
            self._log.warning("%s failed: %s: %s (not logged again until it works)",
                              self._what, type(exc).__name__, exc)

    def ok(self) -> None:
        if self.down:
            self.down = False
            self._log.warning("%s works again", self._what)
