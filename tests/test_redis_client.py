"""What the service relies on from the asyncio Redis client: a cancelled command raises
CancelledError and gives its connection back.

redis-py 8.0–8.2 broke both (a command cancelled mid-flight returned normally, and the
connection stayed checked out until the pool raised MaxConnectionsError): the app's background
loops then never stopped at shutdown and the test suite hung. pyproject pins redis<8; this test
fails on a client with that fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import random

import redis.asyncio as aioredis

from service.resilience.breaker import CircuitBreaker
from service.resilience.redis_guard import Timeouts, open_client


async def _cancel_mid_command(url: str, trials: int, bounded: bool = False) -> tuple[int, int]:
    if bounded:
        r = open_client(url, cluster=False, timeouts=Timeouts(1.0, 1.0), breaker=CircuitBreaker(failures=3, reset_s=1))
    else:
        r = aioredis.from_url(url, decode_responses=True, max_connections=20)
    script = r.register_script("return redis.call('HINCRBY', KEYS[1], 'n', ARGV[1])")
    rng = random.Random(7)
    ignored = 0

    async def busy() -> None:
        while True:
            await r.hincrby("am:test:cancel", "n", 1)
            await script(keys=["am:test:cancel"], args=[1])
            async with r.pipeline(transaction=False) as p:
                p.hincrby("am:test:cancel", "m", 1).get("am:test:none")
                await p.execute()

    try:
        for _ in range(trials):
            t = asyncio.create_task(busy())
            await asyncio.sleep(rng.random() * 0.003)
            t.cancel()
            done, _pending = await asyncio.wait([t], timeout=2.0)
            if not done or not t.cancelled():
                ignored += 1
                t.cancel()
                await asyncio.wait([t], timeout=2.0)
        # Every connection is back: 20 concurrent commands find one each.
        await asyncio.gather(*(r.ping() for _ in range(20)))
        return ignored, trials
    finally:
        await r.aclose()


def test_a_cancelled_command_is_cancelled_and_returns_its_connection(redis_url, clean_redis):
    ignored, trials = asyncio.run(_cancel_mid_command(redis_url, 200))
    assert ignored == 0, f"{ignored} of {trials} cancelled tasks kept running"


def test_a_cancelled_command_of_the_services_bounded_client_is_cancelled(redis_url, clean_redis):
    """The service's client (timeouts, breaker) lets every cancellation through, where redis-py's socket_timeout on Python 3.11 swallowed a third (asyncio.wait_for)."""
    ignored, trials = asyncio.run(_cancel_mid_command(redis_url, 200, bounded=True))
    assert ignored == 0, f"{ignored} of {trials} cancelled tasks kept running"


def test_shutdown_does_not_wait_forever_for_a_task_that_ignores_cancellation(caplog):
    """If a client library swallows the cancel again, the app still stops, and says which loop hung."""
    from service.app import stop_tasks

    async def go() -> tuple[bool, bool]:
        stop = False

        async def stubborn() -> None:
            while not stop:
                with contextlib.suppress(asyncio.CancelledError):  # what redis-py 8 did in a command
                    await asyncio.sleep(0.01)

        async def polite() -> None:
            await asyncio.sleep(3600)

        hung = asyncio.create_task(stubborn(), name="stubborn-loop")
        ok = asyncio.create_task(polite(), name="polite-loop")
        await asyncio.sleep(0)
        await asyncio.wait_for(stop_tasks([hung, ok], 0.2), timeout=5)
        result = (ok.cancelled(), hung.done())
        stop = True  # let it end, or asyncio.run would wait for it forever
        await hung
        return result

    with caplog.at_level("ERROR"):
        assert asyncio.run(go()) == (True, False)
    assert "stubborn-loop did not stop" in caplog.text
