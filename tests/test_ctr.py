"""The click-through estimator, pure: hand-computed posteriors, properties, recovery of a known
world, exploration bounds and determinism."""

from __future__ import annotations

import math
import random
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.ctr import BAND_EDGES, MAX_EXPLORATION, CellCounts, CellKey, CtrConfig, CtrModel, band
from matching.rates import Strength, fit_strength, posterior, shrink_chain
from matching.types import Ad


def ad(ad_id: str, campaign: str = "c1") -> Ad:
    return Ad(id=ad_id, campaign_id=campaign, advertiser_id="adv", title=ad_id, keywords=("k",), bid_fen=100)


FIXED = Strength(lo=10.0, hi=10.0, default=10.0)

# ---- rates: hand-computed oracle -----------------------------------------------------------------


def test_posterior_mean_is_the_hand_computed_gamma_poisson_mean():
    """3 clicks on 100 units of exposure, 10 pseudo-clicks at 0.02: (3 + 10) / (100 + 10 / 0.02)."""
    p = posterior(3, 100, 0.02, 10)
    assert p.shape == 13 and p.rate == 600
    assert p.mean == pytest.approx(13 / 600)


def test_posterior_mean_equals_the_beta_binomial_mean_for_a_rate_per_trial():
    """Per trial (a conversion rate per click), the mean is (C + M·P) / (N + M) with M = m / P."""
    events, trials, parent, m = 7, 40, 0.1, 5.0
    big_m = m / parent
    assert posterior(events, trials, parent, m).mean == pytest.approx((events + big_m * parent) / (trials + big_m))


def test_shrink_chain_matches_a_hand_computation():
    """Root → 2 campaigns → 3 ads with fixed strengths: every posterior computed on paper."""
    parents = [np.array([0, 0]), np.array([0, 0, 1])]  # ads 0, 1 in campaign 0; ad 2 in campaign 1
    clicks = np.array([4.0, 0.0, 1.0])
    exposure = np.array([100.0, 50.0, 10.0])
    fits = shrink_chain(parents, clicks, exposure, root_prior=0.02, root_strength=1.0, bounds=[FIXED, FIXED])
    root = (5 + 1) / (160 + 1 / 0.02)  # 6 / 210
    assert fits[0].mean[0] == pytest.approx(root)
    c0 = (4 + 10) / (150 + 10 / root)
    c1 = (1 + 10) / (10 + 10 / root)
    assert fits[1].mean == pytest.approx([c0, c1])
    assert fits[2].mean == pytest.approx([(4 + 10) / (100 + 10 / c0), (0 + 10) / (50 + 10 / c0),
                                         (1 + 10) / (10 + 10 / c1)])


@given(c=st.integers(0, 500), x=st.floats(0.0, 1e4), parent=st.floats(1e-4, 0.5), m=st.floats(0.1, 1e3),
       more=st.integers(1, 100))
def test_more_events_never_lower_and_the_mean_lies_between_own_rate_and_parent(c, x, parent, m, more):
    """Adding events never lowers the posterior mean; the mean is between C/X and the parent's."""
    base = posterior(c, x, parent, m).mean
    assert posterior(c + more, x, parent, m).mean >= base
    if x > 0:
        lo, hi = sorted((c / x, parent))
        assert lo - 1e-12 <= base <= hi + 1e-12


@settings(max_examples=60, deadline=None)
@given(clicks=st.lists(st.integers(0, 30), min_size=3, max_size=3), more=st.integers(1, 20),
       which=st.integers(0, 2))
def test_more_clicks_on_a_leaf_never_lower_it_along_the_chain(clicks, more, which):
    """With strengths fixed, an extra click on a leaf never lowers that leaf's posterior mean."""
    parents = [np.array([0]), np.array([0, 0, 0])]
    exposure = np.array([300.0, 200.0, 100.0])
    before = shrink_chain(parents, np.array(clicks, dtype=float), exposure, root_prior=0.02, root_strength=1,
                          bounds=[FIXED, FIXED])[-1].mean[which]
    bumped = list(clicks)
    bumped[which] += more
    after = shrink_chain(parents, np.array(bumped, dtype=float), exposure, root_prior=0.02, root_strength=1,
                         bounds=[FIXED, FIXED])[-1].mean[which]
    assert after >= before


def test_fit_strength_shrinks_hard_when_nodes_differ_only_by_noise():
    """Nodes whose counts are exactly Poisson around the parent give the upper bound; spread gives less."""
    rng = np.random.default_rng(0)
    exposure = np.full(200, 1000.0)
    parent = np.full(200, 0.02)
    noise_only = rng.poisson(20.0, size=200).astype(float)
    bounds = Strength(lo=1.0, hi=1000.0, default=10.0)
    assert fit_strength(noise_only, exposure, parent, bounds) > 50
    spread = rng.poisson(20.0 * rng.gamma(4.0, 1 / 4.0, size=200)).astype(float)  # relative variance 1/4
    assert fit_strength(spread, exposure, parent, bounds) == pytest.approx(4.0, rel=0.35)
    assert fit_strength(np.zeros(3), np.zeros(3), np.full(3, 0.02), bounds) == 10.0  # no data: default


# ---- the model -----------------------------------------------------------------------------------


def test_a_new_ad_starts_from_what_its_relevance_predicts():
    """Before any data, pCTR = prior_ctr × relevance × position factor."""
    m = CtrModel.prior(CtrConfig(prior_ctr=0.02))
    assert m.predict(ad("new"), publisher="p", category="IAB1", keyword="", score=0.4) == pytest.approx(0.02 * 0.4)
    assert m.predict(ad("new"), publisher="p", category="", keyword="", score=0.4, position=1) == \
        pytest.approx(0.02 * 0.4 * 0.8)


def test_an_unseen_ad_in_a_known_campaign_starts_from_its_campaign():
    """An ad without data is predicted at its campaign's rate per unit of relevance."""
    cells = {CellKey("c1", "a1", "t", "", "p", 0, band(0.5)): CellCounts(10_000, 5_000.0, 400)}
    m = CtrModel.fit(cells)
    q_new = m.page("p", "t").quality(ad("a2", "c1"), "", 0.5)
    assert q_new == pytest.approx(0.5 * m.campaigns["c1"][0] * m.bands[band(0.5)] * m.publishers["p"]
                                  * m.categories["t"])
    assert m.page("p", "t").quality(ad("x", "other"), "", 0.5) == pytest.approx(
        0.5 * m.root[0] * m.bands[band(0.5)] * m.publishers["p"] * m.categories["t"])


def world(seed: int = 0, n: int = 150_000):
    """Cells drawn from a known world: ad quality × category × position, CTR ∝ relevance."""
    rng = random.Random(seed)
    true_pos = [1.0, 0.6, 0.4]
    ads = [ad(f"a{i}", f"c{i % 5}") for i in range(40)]
    quality = {a.id: rng.lognormvariate(0, 0.5) for a in ads}
    acc: dict[CellKey, list] = defaultdict(lambda: [0, 0.0, 0])
    for _ in range(n):
        a = rng.choice(ads)
        o = rng.randrange(3)
        s = rng.uniform(0.1, 0.5)
        cat = rng.choice(["t1", "t2"])
        p = 0.04 * s * quality[a.id] * true_pos[o] * (1.5 if cat == "t1" else 1.0)
        v = acc[CellKey(a.campaign_id, a.id, cat, "", "p1", o, band(s))]
        v[0] += 1
        v[1] += s
        v[2] += rng.random() < p
    return ads, quality, {k: CellCounts(*v) for k, v in acc.items()}


def test_fit_recovers_position_effects_and_ranks_ads_by_their_true_quality():
    """On a known world, the fitted position factors are near the truth and the ads' predicted
    order agrees with their true quality (Spearman ≥ 0.8)."""
    ads, quality, cells = world()
    m = CtrModel.fit(cells)
    assert m.positions[1] == pytest.approx(0.6, rel=0.12)
    assert m.positions[2] == pytest.approx(0.4, rel=0.15)
    page = m.page("p1", "t2")
    pred = np.array([page.quality(a, "", 0.3) for a in ads])
    true = np.array([quality[a.id] for a in ads])
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    assert np.corrcoef(rank(pred), rank(true))[0, 1] >= 0.8
    assert m.categories["t1"] / m.categories["t2"] == pytest.approx(1.5, rel=0.12)


def test_predictions_are_calibrated_on_the_world_they_were_fitted_on():
    """Σ predicted equals Σ clicks within 5% overall and at each position."""
    _ads, _q, cells = world(seed=1)
    m = CtrModel.fit(cells)
    by_pos: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for k, c in cells.items():
        page = m.page(k.publisher, k.category)
        q = page.quality(ad(k.ad, k.campaign), k.keyword, c.exposure / c.impressions)
        by_pos[k.position][0] += q * m.position_factor(k.position) * c.impressions
        by_pos[k.position][1] += c.clicks
    for pred, clicks in by_pos.values():
        assert pred == pytest.approx(clicks, rel=0.05)


def test_more_clicks_for_an_ad_raise_its_predicted_ctr():
    """Adding clicks to one ad's cells (all else equal) raises its prediction on the next fit."""
    _ads, _q, cells = world(seed=2, n=40_000)
    key = next(k for k in cells if k.ad == "a3" and k.category == "t2" and k.position == 0)
    before = CtrModel.fit(cells).page("p1", "t2").quality(ad("a3", key.campaign), "", 0.3)
    c = cells[key]
    more = dict(cells)
    more[key] = CellCounts(c.impressions, c.exposure, c.clicks + 10)
    after = CtrModel.fit(more).page("p1", "t2").quality(ad("a3", key.campaign), "", 0.3)
    assert after > before


def test_band_edges_and_bounds():
    """Scores map to their band; anything at or above the last edge is the last band."""
    assert band(0.0) == 0 and band(0.099) == 0 and band(0.1) == 1 and band(0.99) == len(BAND_EDGES) - 1
    with pytest.raises(ValueError):
        CtrConfig(exploration=MAX_EXPLORATION + 0.01)


# ---- exploration -----------------------------------------------------------------------------------


@pytest.mark.parametrize("share", [0.0, 0.05, 0.10])
def test_exploration_share_stays_within_its_bound(share):
    """Over 20,000 auctions the exploring share is within 4 standard errors of the setting (and
    never explores at 0)."""
    m = CtrModel.prior(CtrConfig(exploration=share))
    rng = random.Random(7)
    n = 20_000
    explored = sum(m.explores(rng) for _ in range(n))
    if share == 0:
        assert explored == 0
    else:
        assert abs(explored / n - share) <= 4 * math.sqrt(share * (1 - share) / n)


def test_thompson_draws_are_deterministic_given_a_seed_and_centred_on_the_posterior():
    """Same seed, same draws; the draws' mean is the posterior mean within 3%."""
    _ads, _q, cells = world(seed=3, n=30_000)
    m = CtrModel.fit(cells)
    page = m.page("p1", "t1")
    a = ad("a1", "c1")
    draws1 = [page.sample(a, "", 0.3, random.Random(11)) for _ in range(3)]
    draws2 = [page.sample(a, "", 0.3, random.Random(11)) for _ in range(3)]
    assert draws1 == draws2
    rng = random.Random(5)
    draws = [page.sample(a, "", 0.3, rng) for _ in range(20_000)]
    # the leaf (a1, t1, "") has data: its posterior mean is the quality
    assert float(np.mean(draws)) == pytest.approx(page.quality(a, "", 0.3), rel=0.03)


def test_a_new_ad_draws_widely_around_its_campaign():
    """An ad without data draws from its level's prior: spread much wider than a known ad's posterior."""
    _ads, _q, cells = world(seed=4, n=60_000)
    m = CtrModel.fit(cells)
    page = m.page("p1", "t1")
    rng = random.Random(1)
    new = [page.sample(ad("fresh", "c1"), "", 0.3, rng) for _ in range(4000)]
    known = [page.sample(ad("a1", "c1"), "", 0.3, rng) for _ in range(4000)]
    assert np.std(new) / np.mean(new) > 2 * np.std(known) / np.mean(known)
