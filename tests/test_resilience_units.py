"""Pure parts of the resilience layer: the circuit breaker's state machine, the loops' back-off and
logging, the click spool's files (no Redis)."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from matching.click_rules import InvalidReason
from service.billing.click_flow import PendingClick
from service.billing.clicks import ClickClaim
from service.resilience.backoff import LoopHealth
from service.resilience.breaker import CircuitBreaker, State
from service.resilience.redis_guard import CircuitOpen
from service.resilience.spool import ClickSpool


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


def claim(imp: str = "imp-1") -> ClickClaim:
    return ClickClaim(imp=imp, ad="ad-1", cmp="cmp-1", adv="adv-1", pub="pub-1", price=37, issued=1_000.5,
                      url="https://example.com/落地页", user="u-1")


def test_a_pending_click_survives_its_json_form() -> None:
    """What the spool writes reads back equal, reason and clients included."""
    p = PendingClick(claim=claim(), at=1_002.25, reason=InvalidReason.BOT, clients=("ip:10.0.0.1",))
    assert PendingClick.from_json(p.to_json()) == p
    q = PendingClick(claim=claim(), at=1_002.25, reason=None)
    assert PendingClick.from_json(q.to_json()) == q


def test_spooled_clicks_are_private_files_drained_in_order(tmp_path: Path) -> None:
    """Each click is a 0600 file in a 0700 directory; a drain decides them oldest first and removes them."""
    spool = ClickSpool(tmp_path / "spool")
    clicks = [PendingClick(claim=claim(f"imp-{i}"), at=1_000.0 + i, reason=None) for i in range(3)]

    async def go() -> list[str]:
        for c in clicks:
            assert await spool.put(c)
        decided: list[str] = []

        async def decide(c: PendingClick) -> None:
            decided.append(c.claim.imp)
        assert await spool.drain(decide) == 3
        return decided

    async def put_only() -> None:
        assert await spool.put(clicks[0])

    asyncio.run(put_only())
    [f] = spool.files()
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o600 and stat.S_IMODE(os.stat(spool.dir).st_mode) == 0o700
    f.unlink()
    assert asyncio.run(go()) == ["imp-0", "imp-1", "imp-2"]
    assert spool.count() == 0


def test_a_failed_decision_keeps_that_click_and_the_later_ones(tmp_path: Path) -> None:
    """When deciding fails the drain stops, and the undecided clicks stay for the next drain."""
    spool = ClickSpool(tmp_path / "spool")

    async def go() -> None:
        for i in range(3):
            await spool.put(PendingClick(claim=claim(f"imp-{i}"), at=1_000.0 + i, reason=None))
        seen: list[str] = []

        async def decide(c: PendingClick) -> None:
            if c.claim.imp == "imp-1":
                raise CircuitOpen("Redis away")
            seen.append(c.claim.imp)
        with pytest.raises(CircuitOpen):
            await spool.drain(decide)
        assert seen == ["imp-0"]
    asyncio.run(go())
    assert [f.name.split("-", 1)[1] for f in spool.files()] == ["imp-1.json", "imp-2.json"]


def test_an_unreadable_spool_file_is_set_aside(tmp_path: Path) -> None:
    """A damaged file is moved to rejected/ and does not stop the drain."""
    spool = ClickSpool(tmp_path / "spool")
    (spool.dir / "00000000000000000001-bad.json").write_text("{not json")

    async def go() -> int:
        await spool.put(PendingClick(claim=claim(), at=1_001.0, reason=None))

        async def decide(c: PendingClick) -> None:
            return None
        return await spool.drain(decide)
    assert asyncio.run(go()) == 1
    assert [p.name for p in (spool.dir / "rejected").iterdir()] == ["00000000000000000001-bad.json"]
    assert spool.count() == 0
