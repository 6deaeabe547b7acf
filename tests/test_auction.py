"""The GSP auction and pacing rules, pure: hand-computed prices and hypothesis invariants.

Qualities in the hand-computed cases are exact binary fractions (0.5, 0.25, 0.375 …) so the
expected prices can be checked on paper; the property tests compare with an exact rational
oracle (fractions.Fraction), so they also catch float rounding in the price formula.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from matching.auction import Bid, effective_bid, run_auction
from matching.pacing import PACING_SLACK, BudgetState, entry_probability, may_enter, remaining_fen
from matching.types import Ad


def ad(ad_id: str, bid_fen: int = 100, keyword_bids: tuple[tuple[str, int], ...] = ()) -> Ad:
    return Ad(id=ad_id, campaign_id="c-" + ad_id, advertiser_id="adv", title=ad_id, keywords=("k",),
              bid_fen=bid_fen, keyword_bids=keyword_bids)


def bid(ad_id: str, bid_fen: int, quality: float) -> Bid:
    return Bid(ad=ad(ad_id, bid_fen), bid_fen=bid_fen, quality=quality)


def priced(wins: list) -> list[tuple[str, int]]:
    return [(w.bid.ad.id, w.price_fen) for w in wins]


# ---- hand-computed GSP prices -----------------------------------------------------------------

def test_three_bidders_each_pay_just_enough_to_beat_the_next():
    """Each winner pays floor(eCPM_next / own quality) + 1 and the last pays the floor."""
    bids = [bid("a", 200, 0.5),     # eCPM 100
            bid("b", 240, 0.25),    # eCPM 60
            bid("c", 100, 0.375)]   # eCPM 37.5
    wins = run_auction(bids, slots=3, floor_fen=10)
    # a: floor(60 / 0.5) + 1 = 121; b: floor(37.5 / 0.25) + 1 = 151; c: nobody below → floor 10
    assert priced(wins) == [("a", 121), ("b", 151), ("c", 10)]
    assert [w.slot for w in wins] == [0, 1, 2]


def test_predicted_ctrs_as_quality_price_each_winner_against_the_next():
    """With predicted click-through rates as qualities (a few %), the GSP formula is unchanged:
    a pays floor(100 × 0.046875 / 0.03125) + 1 = 151, b pays floor(300 × 0.0078125 / 0.046875) + 1 = 51."""
    bids = [bid("a", 200, 0.03125),     # eCPM 6.25
            bid("b", 100, 0.046875),    # eCPM 4.6875: the best CTR, ranked second on its bid
            bid("c", 300, 0.0078125)]   # eCPM 2.34375: the highest bid, ranked last on its CTR
    assert priced(run_auction(bids, slots=3, floor_fen=10)) == [("a", 151), ("b", 51), ("c", 10)]


def test_higher_quality_outranks_a_higher_bid():
    """A lower bid with better quality wins the top slot and pays less than the bid it beats."""
    wins = run_auction([bid("cheap", 100, 0.5), bid("dear", 180, 0.25)], slots=2, floor_fen=1)
    # cheap eCPM 50 > dear eCPM 45; cheap pays floor(45 / 0.5) + 1 = 91
    assert priced(wins) == [("cheap", 91), ("dear", 1)]


def test_a_bid_of_zero_quality_takes_no_part_even_with_slots_free():
    """A bidder whose quality is 0 (relevance 0, possible with a 0 floor) wins no slot, even when slots are free."""
    wins = run_auction([bid("relevant", 100, 0.5), bid("zero", 500, 0.0), bid("zero2", 400, 0.0)],
                       slots=3, floor_fen=1)
    assert priced(wins) == [("relevant", 1)]


def test_price_is_capped_at_own_bid():
    """A winner never pays more than it bid even when the formula asks for more."""
    # Equal eCPM 50: "b" ranks first on the higher bid; the formula gives 50/0.25 + 1 = 201 > 200.
    wins = run_auction([bid("a", 100, 0.5), bid("b", 200, 0.25)], slots=2, floor_fen=5)
    assert priced(wins) == [("b", 200), ("a", 5)]


def test_price_is_raised_to_the_publisher_floor():
    """A winner whose GSP price falls under the floor pays the floor."""
    wins = run_auction([bid("a", 100, 0.5), bid("b", 12, 0.25)], slots=1, floor_fen=10)
    # GSP price floor(3 / 0.5) + 1 = 7, under the floor of 10
    assert priced(wins) == [("a", 10)]


def test_only_winner_pays_the_floor():
    """A lone bidder pays the publisher floor, not its bid."""
    assert priced(run_auction([bid("a", 500, 0.75)], slots=3, floor_fen=30)) == [("a", 30)]


def test_bids_under_the_floor_take_no_part():
    """A bid under the floor neither wins nor sets the price of the bidder above it."""
    wins = run_auction([bid("a", 100, 0.5), bid("low", 9, 1.0)], slots=2, floor_fen=10)
    assert priced(wins) == [("a", 10)]


def test_bid_equal_to_the_floor_takes_part():
    """A bid exactly at the floor is eligible and pays the floor."""
    wins = run_auction([bid("a", 100, 0.5), bid("edge", 10, 0.5)], slots=2, floor_fen=10)
    assert priced(wins) == [("a", 11), ("edge", 10)]


def test_slots_limit_winners_but_the_first_loser_sets_the_price():
    """With one slot the single winner is priced against the bidder ranked second."""
    wins = run_auction([bid("a", 200, 0.5), bid("b", 160, 0.5), bid("c", 150, 0.5)], slots=1, floor_fen=1)
    assert priced(wins) == [("a", 161)]


def test_ties_break_on_bid_then_ad_id_whatever_the_input_order():
    """Equal eCPMs rank by higher bid, then by ad id, for every input order."""
    bids = [bid("z", 100, 0.5), bid("m", 200, 0.25), bid("a", 100, 0.5), bid("q", 40, 0.75)]
    expected = None
    for order in itertools.permutations(bids):
        got = priced(run_auction(list(order), slots=4, floor_fen=1))
        expected = expected or got
        assert got == expected
    # eCPM 50 for m, a, z (m bids most; a before z by id), then q (30)
    assert [ad_id for ad_id, _ in expected] == ["m", "a", "z", "q"]


def test_exact_tie_pays_own_bid():
    """Two bidders tied on eCPM and bid: the first by id pays its whole bid (it cannot beat the tie)."""
    wins = run_auction([bid("b", 80, 0.5), bid("a", 80, 0.5)], slots=2, floor_fen=1)
    assert priced(wins) == [("a", 80), ("b", 1)]


def test_equal_qualities_price_is_next_bid_plus_one_despite_float_rounding():
    """With equal qualities the winner pays the next bid plus one fen, even where bid×q/q rounds down."""
    q = 0.3740214031046163  # 2998 * q / q == 2997.9999999999995 in floats
    wins = run_auction([bid("a", 5000, q), bid("b", 2998, q)], slots=1, floor_fen=1)
    assert priced(wins) == [("a", 2999)]


def test_no_bidders_no_winners():
    """An auction without eligible bids returns nobody."""
    assert run_auction([], slots=3, floor_fen=1) == []
    assert run_auction([bid("a", 5, 1.0)], slots=3, floor_fen=6) == []


# ---- per-keyword bids -------------------------------------------------------------------------

def test_effective_bid_uses_the_highest_matched_keyword_bid():
    """A page matching keywords with their own bids is bid at the highest of them."""
    a = ad("house", 150, keyword_bids=(("学区房", 220), ("首付", 180), ("别墅", 900)))
    assert effective_bid(a, ["楼盘", "学区房", "首付"]) == 220


def test_effective_bid_falls_back_to_the_ad_bid():
    """A page matching no keyword with its own bid is bid at the ad's bid."""
    a = ad("house", 150, keyword_bids=(("学区房", 220),))
    assert effective_bid(a, ["楼盘", "房贷"]) == 150
    assert effective_bid(a, []) == 150


def test_keyword_bid_under_the_ad_bid_still_applies():
    """A matched per-keyword bid replaces the ad bid even when it is lower."""
    a = ad("house", 150, keyword_bids=(("楼盘", 60),))
    assert effective_bid(a, ["楼盘"]) == 60


def test_keyword_bid_decides_the_auction():
    """A per-keyword bid, once chosen as the effective bid, is what the auction ranks and caps."""
    a = ad("a", 100, keyword_bids=(("学区房", 300),))
    b = ad("b", 200)
    bids = [Bid(ad=a, bid_fen=effective_bid(a, ["学区房"]), quality=0.5),
            Bid(ad=b, bid_fen=effective_bid(b, ["学区房"]), quality=0.5)]
    assert priced(run_auction(bids, slots=2, floor_fen=1)) == [("a", 201), ("b", 1)]


# ---- auction properties -----------------------------------------------------------------------

# Shared quality values make equal-quality pairs common, where float rounding would show.
qualities = st.one_of(st.floats(min_value=1e-3, max_value=1.0, allow_nan=False, allow_infinity=False),
                      st.sampled_from([0.1, 0.3, 0.3740214031046163, 0.7]))
bid_lists = st.lists(st.tuples(st.integers(1, 5000), qualities), min_size=0, max_size=8).map(
    lambda xs: [bid(f"ad{i:02d}", b, q) for i, (b, q) in enumerate(xs)])


def exact_ecpm(b: Bid) -> Fraction:
    return Fraction(b.bid_fen) * Fraction(b.quality)


@given(bids=bid_lists, slots=st.integers(1, 6), floor_fen=st.integers(0, 300))
def test_prices_stay_between_floor_and_bid(bids, slots, floor_fen):
    """No winner pays more than its bid or less than the floor, and no ineligible bid wins."""
    wins = run_auction(bids, slots, floor_fen)
    assert len(wins) <= slots
    for w in wins:
        assert floor_fen <= w.price_fen <= w.bid.bid_fen
        assert w.bid.bid_fen >= max(floor_fen, 1)


@given(bids=bid_lists, slots=st.integers(1, 6), floor_fen=st.integers(0, 300))
def test_winners_come_in_non_increasing_ecpm_order(bids, slots, floor_fen):
    """Winners are listed best first: eCPM never rises down the slots."""
    wins = run_auction(bids, slots, floor_fen)
    ecpms = [w.bid.ecpm for w in wins]
    assert ecpms == sorted(ecpms, reverse=True)
    assert [w.slot for w in wins] == list(range(len(wins)))


@given(bids=bid_lists, slots=st.integers(1, 6), floor_fen=st.integers(0, 300))
def test_prices_match_an_exact_gsp_oracle(bids, slots, floor_fen):
    """Every price equals the GSP formula computed in exact rationals, clamped to [floor, bid]."""
    eligible = sorted((b for b in bids if b.bid_fen >= max(floor_fen, 1)),
                      key=lambda b: (-b.ecpm, -b.bid_fen, b.ad.id))
    wins = run_auction(bids, slots, floor_fen)
    assert [w.bid for w in wins] == eligible[:slots]
    for i, w in enumerate(wins):
        if i + 1 < len(eligible):
            gsp = math.floor(exact_ecpm(eligible[i + 1]) / Fraction(w.bid.quality)) + 1
        else:
            gsp = floor_fen
        assert w.price_fen == max(floor_fen, min(w.bid.bid_fen, gsp))


@given(bids=bid_lists.filter(bool), pick=st.integers(0, 7), raise_by=st.integers(1, 5000),
       floor_fen=st.integers(0, 100))
def test_raising_own_bid_never_lowers_rank(bids, pick, raise_by, floor_fen):
    """A bidder who raises its bid, all else equal, ranks the same or higher."""
    j = pick % len(bids)
    me = bids[j].ad.id

    def rank(bs: list[Bid]) -> float:
        ids = [w.bid.ad.id for w in run_auction(bs, slots=len(bs), floor_fen=floor_fen)]
        return ids.index(me) if me in ids else math.inf

    raised = list(bids)
    raised[j] = Bid(ad=bids[j].ad, bid_fen=bids[j].bid_fen + raise_by, quality=bids[j].quality)
    assert rank(raised) <= rank(bids)


# ---- pacing -----------------------------------------------------------------------------------

def state(**kw) -> BudgetState:
    base = {"daily_budget_fen": None, "total_budget_fen": None, "spent_today_fen": 0, "spent_total_fen": 0}
    return BudgetState(**{**base, **kw})


@pytest.mark.parametrize("s", [
    state(daily_budget_fen=1000, spent_today_fen=901),
    state(total_budget_fen=5000, spent_total_fen=4901),
    state(daily_budget_fen=10_000, total_budget_fen=5000, spent_today_fen=0, spent_total_fen=4950),
], ids=["daily", "total", "total-binds-first"])
def test_may_enter_refuses_when_remaining_budget_is_under_the_bid(s):
    """A campaign whose remaining budget is less than its bid stays out of the auction."""
    assert not may_enter(s, bid_fen=100, day_elapsed=0.5, draw=0.0)


def test_may_enter_accepts_when_remaining_budget_equals_the_bid():
    """A campaign with exactly its bid left still enters."""
    s = state(daily_budget_fen=1000, total_budget_fen=2000, spent_today_fen=900, spent_total_fen=900)
    assert remaining_fen(s) == 100
    assert may_enter(s, bid_fen=100, day_elapsed=0.5, draw=0.0)


def test_unlimited_budgets_never_refuse():
    """A campaign with neither budget enters at any spend."""
    s = state(spent_today_fen=10**9, spent_total_fen=10**12)
    assert remaining_fen(s) is None
    assert may_enter(s, bid_fen=10**6, day_elapsed=0.9, draw=0.999)


def test_frequency_cap_stops_entry_for_that_user():
    """A user who has seen the campaign cap-many times today is not shown it again."""
    assert may_enter(state(frequency_cap=3, user_impressions_today=2), 100, 0.5, 0.0)
    assert not may_enter(state(frequency_cap=3, user_impressions_today=3), 100, 0.5, 0.0)
    assert not may_enter(state(frequency_cap=3, user_impressions_today=7), 100, 0.5, 0.0)


@pytest.mark.parametrize("spent,elapsed", [(0, 0.0), (500, 0.5), (300, 0.5), (510, 0.5), (1000, 1.0)])
def test_even_pacing_on_or_behind_schedule_always_enters(spent, elapsed):
    """An evenly paced campaign on schedule, behind it or within the slack has entry probability 1."""
    s = state(daily_budget_fen=1000, spent_today_fen=spent, even_pacing=True)
    assert entry_probability(s, elapsed) == 1.0


def test_even_pacing_probability_falls_the_further_ahead():
    """The further spend runs ahead of the day, the lower the entry probability, down to 0."""
    probs = [entry_probability(state(daily_budget_fen=1000, spent_today_fen=spent, even_pacing=True), 0.25)
             for spent in (250, 280, 300, 320, 350, 400, 600)]
    assert probs[0] == 1.0
    assert all(a >= b for a, b in itertools.pairwise(probs))
    assert probs[2] == pytest.approx(1.0 - (0.05 - PACING_SLACK) * 10)
    assert probs[-1] == 0.0


def test_even_pacing_draw_decides_entry_when_ahead():
    """Ahead of schedule, a draw below the entry probability enters and one above does not."""
    s = state(daily_budget_fen=1000, spent_today_fen=300, even_pacing=True)  # p = 0.7 at 0.25
    p = entry_probability(s, 0.25)
    assert 0 < p < 1
    assert may_enter(s, 10, 0.25, draw=p - 0.01)
    assert not may_enter(s, 10, 0.25, draw=p + 0.01)


def test_asap_pacing_ignores_the_schedule():
    """A campaign that is not evenly paced enters with probability 1 however far ahead it is."""
    assert entry_probability(state(daily_budget_fen=1000, spent_today_fen=900), 0.01) == 1.0


@given(daily=st.one_of(st.none(), st.integers(0, 10**7)), spent=st.integers(0, 2 * 10**7),
       even=st.booleans(), elapsed=st.floats(allow_nan=False, allow_infinity=False,
                                              min_value=-10, max_value=10))
def test_entry_probability_is_a_probability(daily, spent, even, elapsed):
    """Entry probability is always within [0, 1], even for overspent or odd clock values."""
    s = state(daily_budget_fen=daily, spent_today_fen=spent, even_pacing=even)
    assert 0.0 <= entry_probability(s, elapsed) <= 1.0
