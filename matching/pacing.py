"""Budget and pacing decisions for a campaign entering an auction (pure; spend comes from Redis).

Budget policy: a click that would take spend over the daily or total budget is refused as
``budget_exhausted`` rather than charged in part, so spend never exceeds a budget. A campaign
stops entering auctions once what is left is below its bid. Even pacing spreads the daily budget
over the day: a campaign ahead of schedule (share of daily budget spent > share of day elapsed)
enters auctions with a probability that falls the further ahead it is.
"""

from __future__ import annotations

from dataclasses import dataclass

# How far ahead of schedule (as a share of the daily budget) pacing tolerates before throttling,
# and how quickly the entry probability falls beyond that.
PACING_SLACK = 0.02
PACING_SLOPE = 10.0


@dataclass(frozen=True, slots=True)
class BudgetState:
    daily_budget_fen: int | None  # None: no limit
    total_budget_fen: int | None
    spent_today_fen: int
    spent_total_fen: int
    even_pacing: bool = False
    frequency_cap: int | None = None  # impressions per user per day
    user_impressions_today: int = 0
    # How the campaign pays: per click (None), or cpa_bid_fen per conversion of cpa_event.
    cpa_event: str | None = None
    cpa_bid_fen: int = 0


def remaining_fen(s: BudgetState) -> int | None:
    """What may still be spent today, or None when neither budget limits it."""
    rest = []
    if s.daily_budget_fen is not None:
        rest.append(s.daily_budget_fen - s.spent_today_fen)
    if s.total_budget_fen is not None:
        rest.append(s.total_budget_fen - s.spent_total_fen)
    return min(rest) if rest else None


def entry_probability(s: BudgetState, day_elapsed: float) -> float:
    """Share of auctions an evenly paced campaign enters now (1.0 when on or behind schedule)."""
    if not s.even_pacing or not s.daily_budget_fen:
        return 1.0
    ahead = s.spent_today_fen / s.daily_budget_fen - max(0.0, min(1.0, day_elapsed))
    if ahead <= PACING_SLACK:
        return 1.0
    return max(0.0, 1.0 - (ahead - PACING_SLACK) * PACING_SLOPE)


def may_enter(s: BudgetState, bid_fen: int, day_elapsed: float, draw: float) -> bool:
    """Whether the campaign takes part in this auction; ``draw`` is uniform in [0, 1)."""
    rest = remaining_fen(s)
    if rest is not None and rest < bid_fen:
        return False
    if s.frequency_cap is not None and s.user_impressions_today >= s.frequency_cap:
        return False
    return draw < entry_probability(s, day_elapsed)
