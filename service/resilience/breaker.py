"""A circuit breaker: the decision when to stop calling a store that does not answer (no I/O).

States::

    closed     calls go through; consecutive failures are counted
    open       calls are refused at once (the caller falls back); once ``reset_s`` has passed,
               the next refused call starts a probe (:meth:`probe_due`) ...
    half_open  ... which runs apart from any caller (a PING): its success closes the circuit,
               its failure opens it for another ``reset_s``; calls are still refused meanwhile

So no caller ever waits on a store that is known to be failing: only the calls already under
way when it stopped answering pay the timeout.

A *timeout* opens the circuit at once: its caller has already waited the whole timeout, and the
breaker exists so that nobody else does. Fast failures (connection refused or reset) open it
after ``failures`` in a row, since one alone is often a pooled connection the server dropped.
Any reply, success or error reply, proves the store answers and closes the circuit.

``on_change(old, new, reason)`` is called on every transition. The breaker is used from one
event loop and never awaits, so it needs no lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(self, *, failures: int, reset_s: float, clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[State, State, str], None] | None = None) -> None:
        if failures < 1 or reset_s <= 0:
            raise ValueError("failures must be >= 1 and reset_s > 0")
        self.failures = failures
        self.reset_s = reset_s
        self._clock = clock
        self._on_change = on_change
        self._state = State.CLOSED
        self._consecutive = 0
        self._opened_at = 0.0
        self._probing = False
        self.last_error = ""
        self.opened_count = 0

    @property
    def state(self) -> State:
        return self._state

    @property
    def open_for_s(self) -> float:
        """How long the circuit has been away from closed (0 when closed)."""
        return 0.0 if self._state == State.CLOSED else self._clock() - self._opened_at

    def allow(self) -> bool:
        """Whether a call may go to the store now."""
        return self._state == State.CLOSED

    def probe_due(self) -> bool:
        """Whether a probe should start now (open for ``reset_s``, no probe under way); True makes
        the caller the prober, whose probe must end in :meth:`success`, :meth:`failure` or
        :meth:`release`."""
        if self._state == State.CLOSED or self._probing:
            return False
        if self._state == State.OPEN:
            if self._clock() - self._opened_at < self.reset_s:
                return False
            self._move(State.HALF_OPEN, "probing")
        self._probing = True
        return True

    def success(self) -> None:
        """The store answered."""
        self._consecutive = 0
        self._probing = False
        if self._state != State.CLOSED:
            self._move(State.CLOSED, "the store answered")

    def failure(self, reason: str, *, timeout: bool = False, probe: bool = False) -> None:
        """A call (the probe: ``probe``) failed: no connection, or no reply within the timeout
        (``timeout``)."""
        self._consecutive += 1
        if probe:
            self._probing = False
        self.last_error = reason
        if self._state == State.HALF_OPEN or (
                self._state == State.CLOSED and (timeout or self._consecutive >= self.failures)):
            self._opened_at = self._clock()
            if self._state == State.CLOSED:
                self.opened_count += 1
            self._move(State.OPEN, reason)

    def release(self) -> None:
        """The probe ended without telling anything (cancelled): the next refused call probes again."""
        self._probing = False

    def _move(self, new: State, reason: str) -> None:
        old, self._state = self._state, new
        if self._on_change is not None:
            self._on_change(old, new, reason)
