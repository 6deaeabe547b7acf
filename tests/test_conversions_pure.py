"""Conversions, pure: auctions mixing CPC and CPA bids (hand-computed), click ids, landing URLs and
the shrunk conversion rate. Qualities and conversion rates are exact binary fractions so the
prices can be checked on paper."""

from __future__ import annotations

from fractions import Fraction
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from matching.auction import Bid, run_auction
from matching.conversions import (
    CLICK_PARAM,
    CvrPrior,
    click_id,
    click_param,
    landing_with_click,
    parse_click_id,
    predicted_cvr,
    valid_event,
)
from matching.types import Ad


def ad(ad_id: str, bid_fen: int) -> Ad:
    return Ad(id=ad_id, campaign_id="c-" + ad_id, advertiser_id="adv", title=ad_id, keywords=("k",), bid_fen=bid_fen)


def cpc(ad_id: str, bid_fen: int, quality: float) -> Bid:
    return Bid(ad=ad(ad_id, bid_fen), bid_fen=bid_fen, quality=quality)


def cpa(ad_id: str, bid_fen: int, quality: float, cvr: float) -> Bid:
    return Bid(ad=ad(ad_id, 1), bid_fen=bid_fen, quality=quality, cvr=cvr, per_conversion=True)


def priced(wins: list) -> list[tuple[str, int]]:
    return [(w.bid.ad.id, w.price_fen) for w in wins]


def test_cpa_between_two_cpc_bids_is_priced_per_conversion():
    """A CPA bid ranks by bid × CTR × CVR and pays, per conversion, just enough to keep its rank."""
    bids = [cpc("a", 200, 0.5),               # eCPM 100
            cpa("b", 4000, 0.25, 0.0625),     # eCPM 4000 × 0.25 × 1/16 = 62.5
            cpc("c", 100, 0.375)]             # eCPM 37.5
    wins = run_auction(bids, slots=3, floor_fen=10)
    # a: floor(62.5 / 0.5) + 1 = 126 per click
    # b: floor(37.5 / (0.25 × 1/16)) + 1 = floor(2400) + 1 = 2401 per conversion
    # c: nobody below → the floor, 10 per click
    assert priced(wins) == [("a", 126), ("b", 2401), ("c", 10)]


def test_cpa_on_top_prices_against_the_cpc_bid_below():
    """A CPA winner above a CPC bid pays eCPM_next / (its CTR × CVR) + 1 fen per conversion."""
    wins = run_auction([cpa("b", 8000, 0.25, 0.0625), cpc("a", 200, 0.5)], slots=2, floor_fen=10)
    # b eCPM 125 > a eCPM 100; b: floor(100 / (1/64)) + 1 = 6401; a: floor 10
    assert priced(wins) == [("b", 6401), ("a", 10)]


def test_lone_cpa_winner_pays_the_floor_in_conversion_terms():
    """Alone, a CPA bid pays the per-click floor divided by its conversion rate, rounded up."""
    wins = run_auction([cpa("b", 4000, 0.25, 0.0625)], slots=1, floor_fen=10)
    assert priced(wins) == [("b", 160)]  # ceil(10 × 16)


def test_cpa_bid_worth_less_than_the_floor_per_click_takes_no_part():
    """A CPA bid whose expected value per click (bid × CVR) is under the floor does not enter."""
    assert run_auction([cpa("b", 159, 0.5, 0.0625)], slots=1, floor_fen=10) == []  # 159/16 < 10
    assert priced(run_auction([cpa("b", 160, 0.5, 0.0625)], slots=1, floor_fen=10)) == [("b", 160)]


def test_cpa_price_capped_at_its_bid():
    """A CPA winner never pays more per conversion than it bid."""
    # equal eCPM 50: b (bid 3200 > 200) ranks first; the formula asks floor(50 / (1/64)) + 1 = 3201
    wins = run_auction([cpc("a", 200, 0.25), cpa("b", 3200, 0.25, 0.0625)], slots=2, floor_fen=1)
    assert priced(wins) == [("b", 3200), ("a", 1)]


@given(st.lists(st.tuples(st.integers(1, 5000), st.sampled_from([0.125, 0.25, 0.375, 0.5, 0.75]),
                          st.sampled_from([1.0, 0.5, 0.0625, 0.03125]), st.booleans()), min_size=1, max_size=6),
       st.integers(0, 50))
def test_every_winner_keeps_its_rank_at_its_price_and_pays_at_most_its_bid(raw, floor_fen):
    """Property: at its price each winner's eCPM still reaches the next bidder's; price ≤ bid."""
    bids = [Bid(ad=ad(f"x{i}", 1), bid_fen=b, quality=q, cvr=v if per else 1.0, per_conversion=per)
            for i, (b, q, v, per) in enumerate(raw)]
    wins = run_auction(bids, slots=len(bids), floor_fen=floor_fen)
    ranked = [w.bid for w in wins]
    for i, w in enumerate(wins):
        b = w.bid
        assert w.price_fen <= b.bid_fen
        assert Fraction(w.price_fen) * Fraction(b.cvr) >= floor_fen or w.price_fen == b.bid_fen
        if i + 1 < len(ranked) and w.price_fen < b.bid_fen:
            nxt = ranked[i + 1]
            mine = Fraction(w.price_fen) * Fraction(b.quality) * Fraction(b.cvr)
            assert mine > Fraction(nxt.bid_fen) * Fraction(nxt.quality) * Fraction(nxt.cvr)


# ---- click ids and landing URLs ---------------------------------------------------------------

IMP = "0123456789abcdef0123456789abcdef"


def test_click_id_round_trips_and_rejects_what_it_cannot_have_made():
    """A click id gives back its impression and campaign; malformed ones give None."""
    assert parse_click_id(click_id(IMP, "cmp_ab12")) == (IMP, "cmp_ab12")
    assert parse_click_id(click_id(IMP, "cmp.with.dots")) == (IMP, "cmp.with.dots")
    for bad in ["", IMP, "." + "cmp", "xyz.cmp", IMP.upper() + ".c", IMP + ".", IMP + ".c d", IMP + ".{c}",
                IMP + "." + "c" * 300]:
        assert parse_click_id(bad) is None, bad


@pytest.mark.parametrize(("url", "expected"), [
    ("https://shop.example.com/p", "https://shop.example.com/p?admatch_click=CID"),
    ("https://shop.example.com/p?a=1&b=%E4%B8%AD", "https://shop.example.com/p?a=1&b=%E4%B8%AD&admatch_click=CID"),
    ("https://shop.example.com/p?a=1#buy", "https://shop.example.com/p?a=1&admatch_click=CID#buy"),
    ("https://shop.example.com/p#/route?x=1", "https://shop.example.com/p?admatch_click=CID#/route?x=1"),
    ("https://shop.example.com/p?admatch_click=old&z=2", "https://shop.example.com/p?z=2&admatch_click=CID"),
    ("https://shop.example.com/?", "https://shop.example.com/?admatch_click=CID"),
])
def test_landing_url_gets_the_click_id_and_keeps_its_query_and_fragment(url, expected):
    """The click id is appended to the query, before the fragment, replacing an earlier one."""
    cid = click_id(IMP, "cmp_1")
    out = landing_with_click(url, cid)
    assert out == expected.replace("CID", cid)
    assert click_param(out) == cid
    assert [k for k, _ in parse_qsl(urlsplit(out).query)].count(CLICK_PARAM) == 1


def test_event_names():
    """Event types are short lower-case identifiers."""
    assert all(valid_event(e) for e in ["order", "lead", "conversation_started", "a1"])
    assert not any(valid_event(e) for e in ["", "Order", "1x", "with space", "x" * 33, "订单"])


# ---- predicted conversion rate ------------------------------------------------------------------

def test_cvr_without_data_is_the_prior_and_shrinks_level_by_level():
    """No clicks: the prior; a campaign's counts pull it, an ad's pull from its campaign's."""
    prior = CvrPrior(rate=0.02, strength=100)
    assert predicted_cvr(ad_conversions=0, ad_clicks=0, campaign_conversions=0, campaign_clicks=0,
                         prior=prior) == pytest.approx(0.02)
    # campaign: (30 + 100 × 0.02) / (300 + 100) = 32/400 = 0.08; ad with no clicks: 0.08
    assert predicted_cvr(ad_conversions=0, ad_clicks=0, campaign_conversions=30, campaign_clicks=300,
                         prior=prior) == pytest.approx(0.08)
    # ad: (10 + 100 × 0.08) / (100 + 100) = 18/200 = 0.09
    assert predicted_cvr(ad_conversions=10, ad_clicks=100, campaign_conversions=30, campaign_clicks=300,
                         prior=prior) == pytest.approx(0.09)
