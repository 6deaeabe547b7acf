"""A time limit on an awaited call that does not blame the server for the caller's own stalls.

``async with deadline(0.5): await redis_call()`` raises ``TimeoutError`` when the call has not
finished 0.5 s after it started, like ``asyncio.timeout`` — unless the event loop itself was held
up when the limit came due (CPU work in a handler, a garbage-collection pause, a thread holding the
GIL, a busy machine). A timer that fires more than :data:`STALL_S` late shows that stall; the reply
may then already sit in the socket unread, so the call gets another :data:`STALL_S` of running
loop instead of being cancelled and the server's circuit opened for nothing. A loop that keeps
stalling cannot stretch a call past ``CAP`` times its limit.

Without this, a test process running an index build beside an app (or a serving process encoding
a long page on a slow machine) opened the Redis circuit with Redis answering in microseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

STALL_S = 0.05  # a timer firing this late means the loop did not run: look again once it does
CAP = 10.0      # a call never runs past CAP × its limit, however the loop stalls


class _Watch:
    def __init__(self, loop: asyncio.AbstractEventLoop, cm: asyncio.Timeout, limit_s: float) -> None:
        self.loop = loop
        self.cm = cm
        now = loop.time()
        self.hard = now + limit_s * CAP
        self.stalls = 0
        self.handle = loop.call_at(now + limit_s, self._due, now + limit_s)

    def _due(self, due_at: float) -> None:
        now = self.loop.time()
        if now - due_at > STALL_S and now < self.hard:
            self.stalls += 1
            again = now + STALL_S
            self.handle = self.loop.call_at(again, self._due, again)
        else:
            self.cm.reschedule(now)  # expire now: the Timeout cancels the call and raises TimeoutError

    def cancel(self) -> None:
        self.handle.cancel()


@asynccontextmanager
async def deadline(limit_s: float | None) -> AsyncIterator[None]:
    """``asyncio.timeout(limit_s)`` that forgives the event loop's own stalls (``None``: no limit)."""
    if limit_s is None:
        yield
        return
    async with asyncio.timeout(None) as cm:
        watch = _Watch(asyncio.get_running_loop(), cm, limit_s)
        try:
            yield
        finally:
            watch.cancel()
