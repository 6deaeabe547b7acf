"""Pure parts of the resilience layer: the circuit breaker's state machine, the loops' back-off and
logging (no Redis)."""

from __future__ import annotations

import logging

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from service.resilience.backoff import LoopHealth
from service.resilience.breaker import CircuitBreaker, State
from service.resilience.redis_guard import CircuitOpen


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def breaker(clock: FakeClock, changes: list[tuple[State, State]] | None = None) -> CircuitBreaker:
    return CircuitBreaker(failures=3, reset_s=1.0, clock=clock,
                          on_change=lambda old, new, _why: changes.append((old, new)) if changes is not None else None)


def test_breaker_opens_after_consecutive_connection_failures_only() -> None:
    """Two failures, a success, two failures keep it closed; the third in a row opens it."""
    b = breaker(FakeClock())
    for _ in range(2):
        b.failure("refused")
    b.success()
    for _ in range(2):
        b.failure("refused")
    assert b.state == State.CLOSED and b.allow()
    b.failure("refused")
    assert b.state == State.OPEN and not b.allow()


def test_a_timeout_opens_the_breaker_at_once() -> None:
    """One timeout opens it: its caller already waited the whole timeout."""
    b = breaker(FakeClock())
    b.failure("no reply", timeout=True)
    assert b.state == State.OPEN and not b.allow()


def test_after_the_reset_time_one_probe_runs_and_its_success_closes() -> None:
    """Open refuses every call; past reset_s exactly one probe is due, and its success closes the circuit."""
    clock, changes = FakeClock(), []
    b = breaker(clock, changes)
    b.failure("no reply", timeout=True)
    clock.t += 0.99
    assert not b.probe_due() and not b.allow()
    clock.t += 0.02
    assert b.probe_due() and not b.probe_due()  # one probe; calls are still refused meanwhile
    assert b.state == State.HALF_OPEN and not b.allow()
    b.success()
    assert b.state == State.CLOSED and b.allow()
    assert changes == [(State.CLOSED, State.OPEN), (State.OPEN, State.HALF_OPEN), (State.HALF_OPEN, State.CLOSED)]


def test_a_failed_probe_opens_the_circuit_for_another_reset_time() -> None:
    """A probe's failure re-opens the circuit from that moment; a cancelled probe lets the next one start."""
    clock = FakeClock()
    b = breaker(clock)
    b.failure("refused", timeout=True)
    clock.t += 1.5
    assert b.probe_due()
    b.release()  # cancelled
    assert b.probe_due()
    b.failure("still refused", probe=True)
    assert b.state == State.OPEN
    clock.t += 0.9
    assert not b.probe_due()
    clock.t += 0.2
    assert b.probe_due()
    assert b.opened_count == 1


def test_a_failing_loop_logs_once_backs_off_and_logs_its_recovery(caplog: pytest.LogCaptureFixture) -> None:
    """Repeated Redis failures log one line, the pause doubles to the cap, the recovery logs one line."""
    clock = FakeClock()
    health = LoopHealth("test loop", 0.2, logging.getLogger("test.loop"), max_interval=1.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="test.loop"):
        delays = [health.failed(CircuitOpen("down")) for _ in range(5)]
        health.failed(RedisConnectionError("refused"))  # the same kind: Redis away
        clock.t += 3
        assert health.ok() == 0.2
        assert health.ok() == 0.2
    assert delays == [0.4, 0.8, 1.0, 1.0, 1.0]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert "test loop paused: Redis unavailable" in messages[0] and caplog.records[0].exc_info is None
    assert messages[1] == "test loop resumed after 3.0 s"


def test_a_loop_failing_for_another_reason_logs_its_traceback_once(caplog: pytest.LogCaptureFixture) -> None:
    """A bug (not Redis being away) is logged with its traceback, once per change of kind."""
    health = LoopHealth("test loop", 0.2, logging.getLogger("test.loop"))
    with caplog.at_level(logging.INFO, logger="test.loop"):
        for _ in range(3):
            health.failed(KeyError("bad entry"))
        health.failed(CircuitOpen("down"))
    assert len(caplog.records) == 2
    assert caplog.records[0].exc_info is not None and caplog.records[1].exc_info is None
