"""Redis clients whose every call is bounded in time and passes a circuit breaker.

Contract: a call on a client from :func:`open_client` either returns, raises a Redis error reply,
or raises one of :data:`STORE_DOWN` within the command timeout (a command or pipeline whose reply,
or connection, does not come in time raises ``TimeoutError``). While the breaker is open, calls
raise :class:`CircuitOpen` (a ``ConnectionError``) at once, so a stalled or dead Redis costs
callers microseconds, and callers fall back (degraded mode); a refused call past the breaker's
reset time starts a background PING, whose answer closes the circuit.

Commands are never retried inside the client: a timed-out command may still run when the server
resumes, so a retry would run it twice and double the wait. A pooled connection the server has
closed is replaced when it is taken from the pool (redis-py checks it), so a restarted server
costs no failed call.

The command timeout is an ``asyncio.timeout`` around each call, not redis-py's ``socket_timeout``:
on Python 3.11 that one sends through ``asyncio.wait_for``, which swallows a task's cancellation
when the send completes at the same moment (in a stress test a third of cancelled commands
carried on), so the app's background loops would not stop at shutdown. A timed-out call is
cancelled inside redis-py, which then drops its connection (``tests/test_redis_client.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service import metrics
from service.resilience.breaker import CircuitBreaker, State
from service.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

# What a call raises when Redis cannot be reached or does not answer in time (CircuitOpen included).
STORE_DOWN: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError)


class CircuitOpen(RedisConnectionError):
    """Refused without trying: Redis failed recently and the breaker waits before probing it."""


# Timeouts of command-line tools (see Timeouts.batch).
BATCH_CONNECT_S = 5.0
BATCH_COMMAND_S = 60.0


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect_s: float
    command_s: float

    @classmethod
    def serving(cls, s: Settings) -> Timeouts:
        return cls(s.redis_connect_timeout_ms / 1000, s.redis_timeout_ms / 1000)

    @classmethod
    def batch(cls) -> Timeouts:
        """For command-line tools and scripts: an index build reads large replies (a whole
        advertiser's ads in one MGET), so a command may take up to a minute."""
        return cls(BATCH_CONNECT_S, BATCH_COMMAND_S)


def breaker_for(s: Settings) -> CircuitBreaker:
    """The serving process's breaker, logging each change between reachable and not once."""
    return CircuitBreaker(failures=s.redis_breaker_failures, reset_s=s.redis_breaker_reset_ms / 1000,
                          on_change=_log_change)


def _log_change(old: State, new: State, reason: str) -> None:
    if new == State.OPEN and old == State.CLOSED:
        metrics.REDIS_CIRCUIT_OPENED.inc()
        log.warning("Redis unavailable (%s): circuit open; matches use the loaded index and the last known "
                    "budgets, clicks are redirected and spooled to disk until Redis answers again", reason)
    elif new == State.CLOSED:
        log.warning("Redis answers again: circuit closed")


class _Guard:
    def __init__(self, breaker: CircuitBreaker | None, timeout_s: float | None,
                 ping: Callable[[], Awaitable[Any]] | None = None) -> None:
        self.breaker = breaker
        self.timeout_s = timeout_s
        self._ping = ping
        self.probe: asyncio.Task[None] | None = None

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        b = self.breaker
        if b is not None and not b.allow():
            if self._ping is not None and b.probe_due():
                self.probe = asyncio.get_running_loop().create_task(self._probe(), name="redis-probe")
            raise CircuitOpen(f"Redis unavailable for the last {b.open_for_s:.1f} s ({b.last_error}); "
                              "not tried again yet")
        return await self._attempt(call)

    async def _probe(self) -> None:
        assert self._ping is not None
        with contextlib.suppress(RedisError):  # the outcome is the breaker's state
            await self._attempt(self._ping, probe=True)

    async def _attempt(self, call: Callable[[], Awaitable[T]], probe: bool = False) -> T:
        b = self.breaker
        try:
            async with asyncio.timeout(self.timeout_s):
                result = await call()
        except TimeoutError:  # asyncio's: the whole call took too long
            ms = (self.timeout_s or 0) * 1000
            if b is not None:
                b.failure(f"no reply within {ms:.0f} ms", timeout=True, probe=probe)
            raise RedisTimeoutError(f"no reply from Redis within {ms:.0f} ms") from None
        except RedisTimeoutError as e:  # redis-py's: no connection within the connect timeout
            if b is not None:
                b.failure(str(e), timeout=True, probe=probe)
            raise
        except RedisConnectionError as e:
            if b is not None:
                b.failure(f"{type(e).__name__}: {e}", probe=probe)
            raise
        except RedisError:
            if b is not None:
                b.success()  # an error reply: the server answered
            raise
        except BaseException:
            if b is not None and probe:
                b.release()
            raise
        if b is not None:
            b.success()
        return result


class GuardedRedis(aioredis.Redis):
    guard = _Guard(None, None)

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        call = super().execute_command
        return await self.guard.run(lambda: call(*args, **options))

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> GuardedPipeline:
        p = GuardedPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        p.guard = self.guard
        return p


class GuardedPipeline(Pipeline):
    guard = _Guard(None, None)

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        call = super().execute
        return await self.guard.run(lambda: call(raise_on_error))


class GuardedCluster(aiocluster.RedisCluster):
    guard = _Guard(None, None)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        call = super().execute_command
        return await self.guard.run(lambda: call(*args, **kwargs))

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> GuardedClusterPipeline:
        if shard_hint:
            raise ValueError("shard_hint is not supported in cluster mode")
        p = GuardedClusterPipeline(self, transaction)
        p.guard = self.guard
        return p


class GuardedClusterPipeline(aiocluster.ClusterPipeline):
    guard = _Guard(None, None)

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> list[Any]:
        call = super().execute
        return await self.guard.run(lambda: call(raise_on_error, allow_redirections))


async def close_client(client: aioredis.Redis) -> None:
    """Close ``client``, and first its probe if one is under way."""
    probe = getattr(client, "guard", _Guard(None, None)).probe
    if probe is not None and not probe.done():
        probe.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probe
    await client.aclose()


def open_client(url: str, *, cluster: bool, timeouts: Timeouts,
                breaker: CircuitBreaker | None = None, decode: bool = True) -> aioredis.Redis:
    """A client for ``url`` with decoded replies (bytes when not ``decode``), ``timeouts`` on every
    connection and call (a call that opens a connection included), and, given a ``breaker``,
    calls refused at once while it is open."""
    opts: dict[str, Any] = {"decode_responses": decode, "socket_connect_timeout": timeouts.connect_s,
                            "retry": Retry(NoBackoff(), 0)}
    client: Any
    if cluster:
        client = GuardedCluster.from_url(url, **opts)
        base: Any = aiocluster.RedisCluster
    else:
        client = GuardedRedis.from_url(url, health_check_interval=30, **opts)
        base = aioredis.Redis
    client.guard = _Guard(breaker, timeouts.command_s, ping=lambda: base.execute_command(client, "PING"))
    return client  # type: ignore[no-any-return]
