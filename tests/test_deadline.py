"""The Redis command limit forgives the caller's own event-loop stalls, and only those.

CI once opened the circuit with Redis answering in microseconds: the test process was building an
index beside the app, the app's loop ran late, and ``asyncio.timeout`` cancelled calls whose
replies were already in the socket. These tests stall the loop on purpose.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from service.resilience.breaker import CircuitBreaker, State
from service.resilience.deadline import CAP, deadline
from service.resilience.redis_guard import Timeouts, open_client


async def _answered_during_a_stall(limit: float, stall: float, use_deadline: bool) -> str:
    """A reply that arrives while the loop is blocked, read after the limit has passed."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[str] = loop.create_future()
    loop.call_later(0.01, lambda: time.sleep(stall))          # the loop is blocked ...
    loop.call_later(0.02, lambda: fut.done() or fut.set_result("reply"))  # ... the reply is ready
    cm = deadline(limit) if use_deadline else asyncio.timeout(limit)
    async with cm:
        return await fut


def test_a_reply_ready_during_a_loop_stall_is_taken_not_timed_out():
    assert asyncio.run(_answered_during_a_stall(0.1, 0.3, use_deadline=True)) == "reply"


def test_the_plain_asyncio_timeout_does_time_it_out():
    """The oracle: the same stall under asyncio.timeout is the spurious timeout deadline avoids."""
    with pytest.raises(TimeoutError):
        asyncio.run(_answered_during_a_stall(0.1, 0.3, use_deadline=False))


async def _never(limit: float) -> float:
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        async with deadline(limit):
            await asyncio.Event().wait()
    return time.monotonic() - start


def test_a_call_that_never_answers_times_out_at_its_limit():
    took = asyncio.run(_never(0.1))
    assert 0.1 <= took < 0.1 * CAP


async def _stalls_forever(limit: float) -> float:
    loop = asyncio.get_running_loop()

    def stall() -> None:  # blocks the loop 80 ms out of every 90 ms
        time.sleep(0.08)
        loop.call_later(0.01, stall)

    loop.call_soon(stall)
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        async with deadline(limit):
            await asyncio.Event().wait()
    return time.monotonic() - start


def test_a_loop_that_keeps_stalling_cannot_stretch_a_call_past_the_cap():
    took = asyncio.run(_stalls_forever(0.05))
    assert took <= 0.05 * CAP + 0.2  # the last stall may overrun the cap by one stall


async def _redis_get_across_a_stall(url: str) -> tuple[str | None, State]:
    breaker = CircuitBreaker(failures=3, reset_s=5)
    r = open_client(url, cluster=False, timeouts=Timeouts(1.0, 0.2), breaker=breaker)
    try:
        await r.set("am:test:deadline", "v")
        get = asyncio.ensure_future(r.get("am:test:deadline"))  # sends, then waits for the reply ...
        asyncio.get_running_loop().call_soon(time.sleep, 0.6)   # ... while the loop is blocked 3× the limit
        value = await get
        return value, breaker.state
    finally:
        await r.aclose()


def test_a_real_redis_call_across_a_loop_stall_succeeds_and_keeps_the_circuit_closed(redis_url, clean_redis):
    value, state = asyncio.run(_redis_get_across_a_stall(redis_url))
    assert value == "v"
    assert state == State.CLOSED
