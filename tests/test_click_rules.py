"""Click and auction-entry rules at their boundaries (pure): a click's age, the pacing draw, and
which IP a click is counted against."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request

from matching.click_rules import InvalidReason, timing_reason
from matching.pacing import BudgetState, entry_probability, may_enter
from service.api.routes.click import client_ip

WINDOW_S, MIN_DELAY_S, ISSUED = 3600.0, 1.0, 1_764_800_000.0


@pytest.mark.parametrize("age,expected", [
    (MIN_DELAY_S - 0.001, InvalidReason.TOO_FAST), (MIN_DELAY_S, None), (WINDOW_S, None),
    (WINDOW_S + 0.001, InvalidReason.EXPIRED)], ids=["too-fast", "min-delay", "window-end", "expired"])
def test_a_click_exactly_at_either_end_of_its_window_is_on_time(age: float, expected: InvalidReason | None) -> None:
    """A click exactly at the minimum delay or exactly at the end of the window is on time; a millisecond outside is not."""
    assert timing_reason(ISSUED, ISSUED + age, window_s=WINDOW_S, min_delay_s=MIN_DELAY_S) == expected


def paced(spent_today: int) -> BudgetState:
    return BudgetState(daily_budget_fen=1000, total_budget_fen=None, spent_today_fen=spent_today,
                       spent_total_fen=spent_today, even_pacing=True)


def test_a_campaign_paced_out_entirely_enters_no_auction_even_on_a_zero_draw() -> None:
    """Far ahead of schedule the entry probability is 0, and no draw in [0, 1) enters, 0.0 included."""
    s = paced(900)
    assert entry_probability(s, day_elapsed=0.0) == 0.0
    assert not may_enter(s, bid_fen=10, day_elapsed=0.0, draw=0.0)


def test_a_paced_campaign_enters_on_draws_under_its_probability_only() -> None:
    """A campaign a little ahead of schedule enters on a draw just under its entry probability, not on one equal to it."""
    s = paced(100)
    p = entry_probability(s, day_elapsed=0.05)
    assert 0.0 < p < 1.0
    assert may_enter(s, bid_fen=10, day_elapsed=0.05, draw=p - 1e-9)
    assert not may_enter(s, bid_fen=10, day_elapsed=0.05, draw=p)


def request(headers: dict[str, str], client: tuple[str, int] | None = ("203.0.113.9", 5555)) -> Request:
    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/v1/click/x", "client": client,
                             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    return Request(scope)


def test_forwarded_for_names_the_client_only_behind_a_trusted_proxy() -> None:
    """With ADMATCH_TRUST_FORWARDED_FOR a click counts against the first X-Forwarded-For hop; without it, against the socket's peer."""
    behind_proxy = request({"X-Forwarded-For": "198.51.100.7, 10.0.0.1"})
    assert client_ip(behind_proxy, True) == "198.51.100.7"
    assert client_ip(behind_proxy, False) == "203.0.113.9"
    assert client_ip(request({}), True) == "203.0.113.9"


def test_a_click_without_a_peer_address_counts_as_unknown() -> None:
    """A request with no client address (a unix socket) is counted under the one id 'unknown'."""
    assert client_ip(request({}, client=None), False) == "unknown"
