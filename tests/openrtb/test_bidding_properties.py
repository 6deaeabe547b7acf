"""Pure bid decisions: properties checked against their definitions, no service."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.ctr import NONE, CellCounts, CellKey, CtrConfig, CtrModel, band
from matching.openrtb_bidding import Offer, Slot, Terms, decide, predicted_ctr
from matching.openrtb_taxonomy import ancestry, to_ours
from matching.types import Ad, Candidate, Signals

CATS = ["80DV8O", "441", "451", "1", "30", "480", "596", "632", "Rm3SiT"]
DOMAINS = ["a.example.com", "b.example.com", "shop.b.example.com", "c.example.net"]


@st.composite
def offers(draw: st.DrawFn) -> list[Offer]:
    n = draw(st.integers(0, 8))
    out = []
    for i in range(n):
        ad = Ad(id=f"ad{i}", campaign_id="c", advertiser_id="a", title="t", keywords=(), bid_fen=1)
        out.append(Offer(ad=ad, cpc_fen=draw(st.integers(1, 5000)), ctr=draw(st.floats(0.0005, 0.2)),
                         categories=tuple(draw(st.lists(st.sampled_from(CATS), max_size=2))),
                         domain=draw(st.sampled_from(DOMAINS))))
    return out


@settings(max_examples=300, deadline=None)
@given(offers(), st.lists(st.decimals(0, 50, places=2), min_size=1, max_size=4),
       st.lists(st.sampled_from(CATS), max_size=2), st.lists(st.sampled_from(["b.example.com", "x.org"]), max_size=1),
       st.booleans(), st.sampled_from([Decimal(1), Decimal("7.2")]))
def test_no_bid_below_floor_or_blocked(offs: list[Offer], floors: list[Decimal], bcat: list[str],
                                       badv: list[str], first: bool, rate: Decimal) -> None:
    """No bid is under its floor, above its value, for a blocked category or domain, or repeats an ad."""
    slots = [Slot(id=str(i), sizes=((300, 250),), floor=f) for i, f in enumerate(floors)]
    blocked = to_ours(bcat, 9)
    terms = Terms(cny_per_unit=rate, revenue_share=Decimal("0.7"), first_price=first)
    ds = decide(slots, offs, bcat=blocked, badv=badv, terms=terms)
    assert len({d.offer.ad.id for d in ds}) == len(ds)
    assert len({d.slot.id for d in ds}) == len(ds)
    for d in ds:
        assert d.price >= d.slot.floor and d.price > 0 and d.price <= d.value
        assert d.click_price_fen <= d.offer.cpc_fen
        assert not any(set(ancestry(c)) & blocked for c in d.offer.categories)
        assert not any(d.offer.domain == b or d.offer.domain.endswith("." + b) for b in badv)
        # the value is the click price × CTR × 1000 × share, in the response currency (fen → yuan)
        expected = Decimal(d.click_price_fen) * Decimal(repr(d.offer.ctr)) * 1000 * Decimal("0.7") / 100 / rate
        assert abs(d.value - expected) < Decimal("0.0001")


def test_gsp_click_price_against_runner_up() -> None:
    """The winner's click costs the runner-up's eCPM over its CTR plus one fen, not its bid."""
    a = Offer(Ad("a", "c", "x", "t", (), 1), cpc_fen=200, ctr=0.02, categories=(), domain="a.com")
    b = Offer(Ad("b", "c", "x", "t", (), 1), cpc_fen=100, ctr=0.02, categories=(), domain="b.com")
    (d,) = decide([Slot("1", ((300, 250),), Decimal(0))], [a, b], terms=Terms(Decimal(1), Decimal(1)))
    assert d.offer.ad.id == "a" and d.click_price_fen == 101
    assert d.price == Decimal("20.2")  # 101 fen × 2 % × 1000 = 2020 fen CPM = 20.20 CNY


def test_iab1_and_ct3_mapping() -> None:
    """IAB21 is real estate (441); CT 3.0 gambling 181 blocks our lotteries node; unknown ids kept."""
    assert to_ours(["IAB21-3"], None) == {"441"}
    assert "480" in to_ours(["181"], 7)
    assert to_ours(["zzz"], 9) == {"zzz"}


def test_predicted_ctr_is_the_click_models_when_there_is_one() -> None:
    """Without a click model: 2 % × relevance. With one: its top-slot pCTR for the ad on the page,
    which for an ad with no data is the campaign's rate per unit of relevance (a campaign clicked
    at 8 % per unit of relevance bids on 8 %, not on the default 2 %)."""
    ad = Ad(id="new", campaign_id="c1", advertiser_id="a", title="t", keywords=("手机",), bid_fen=100)
    cand = Candidate(ad=ad, score=0.5, signals=Signals(keyword=1.0, tfidf=0.5, dense=0.5), matched_keywords=("手机",))
    assert predicted_ctr(cand) == 0.02 * 0.5
    assert predicted_ctr(cand, CtrModel.prior(CtrConfig(prior_ctr=0.02)).page("x:ex", NONE)) == \
        pytest.approx(0.02 * 0.5)
    cells = {CellKey("c1", "seen", NONE, "手机", "pub", 0, band(0.5)): CellCounts(100_000, 50_000.0, 4_000)}
    learned = predicted_ctr(cand, CtrModel.fit(cells).page("x:ex", NONE))
    assert learned > 0.02 * 0.5 * 2  # the campaign's 8 % per unit of relevance pulls it well above the default
    assert learned <= 0.2
