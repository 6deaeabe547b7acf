"""Predicted click-through rate of an ad on a page: the auction's quality term, pure.

Model, for ad *a* on a page of publisher *p*, top category *t*, the ad's primary matched keyword
*k*, relevance score *s* and slot position *o*::

    pCTR = s · ρ(band of s) · φ(p) · ψ(t) · π(o) · Θ(a, t, k)

- ``s`` is the relevance score (:class:`matching.types.Candidate.score`): the reference, so a new
  ad starts from what its relevance predicts. Each impression's *exposure* is its ``s``; the
  counters keep Σ s, a model-free figure, so past counts never need rewriting when the model moves.
- ``π(o)``: position (examination) effect, π(0) = 1; ``φ(p)``: publisher effect; ``ψ(t)``: page
  category effect; ``ρ(band)``: correction of the linear relevance curve per band of s. Main
  effects, each shrunk toward its prior (π toward ``CtrConfig.position_prior``, the others toward 1).
- ``Θ``: click-through per unit of relevance along the chain root → campaign → ad →
  ad × category → ad × category × keyword, each level shrunk toward its parent
  (:func:`matching.rates.shrink_chain`, strengths by empirical Bayes). The chain is nested, so
  every level's counts are sums of the leaf cells' and the shrinkage is exact; an ad × context never
  seen falls back to the deepest level that was.

Position-bias correction is COEC (clicks over expected clicks): exposures are weighted by π(o),
and π is fitted from the same cells with the ad's rate as a nuisance, so an ad shown low is not
mistaken for a poor ad, nor a low slot for one that only poor ads reach.

:meth:`CtrModel.fit` fits all of it from the counters' cells by a few rounds of backfitting
(chain, then each main effect in turn); a fitted model is an immutable snapshot. Per candidate
the serving path costs one to four dictionary lookups (:meth:`PageCtr.quality`).

Exploration: in a share ``CtrConfig.exploration`` of auctions (≤ :data:`MAX_EXPLORATION`) the
auction ranks by a Thompson draw from each candidate's posterior instead of its mean; an ad × context
without data draws from the prior of the first level it has not reached, so new ads get
impressions. Deterministic given the caller's ``random.Random``.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from matching.rates import Posterior, Strength, posterior, shrink_chain
from matching.types import Ad

# Lower edges of the relevance bands (scores are blends in [0, 1]; most served ads are 0.1–0.5).
BAND_EDGES = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6)
MAX_POSITIONS = 10  # slots a page may ask for (service.api.schemas.MatchRequest.slots)
MAX_EXPLORATION = 0.10
NONE = ""  # no category / no matched keyword


def band(score: float) -> int:
    """The relevance band of a score."""
    return max(0, bisect.bisect_right(BAND_EDGES, score) - 1)


class CellKey(NamedTuple):
    """What one impression is counted under: the finest cell the model learns from."""

    campaign: str
    ad: str
    category: str  # the page's top category id, or NONE
    keyword: str  # the ad's primary matched keyword, or NONE
    publisher: str
    position: int  # 0-based slot
    band: int


@dataclass(frozen=True, slots=True)
class CellCounts:
    impressions: int
    exposure: float  # Σ relevance score of the impressions
    clicks: int


@dataclass(frozen=True, slots=True)
class CtrConfig:
    """Priors and limits of the model. ``prior_ctr`` is the click-through of relevance 1 at the top
    slot before any data (a page's best ads score 0.2–0.5: 0.4–1 %)."""

    prior_ctr: float = 0.02
    root_strength: float = 1.0  # pseudo-clicks behind prior_ctr: the data overrules it at once
    position_prior: tuple[float, ...] = (1.0, 0.8, 0.65, 0.55, 0.5, 0.45, 0.4, 0.37, 0.35, 0.33)
    position_strength: float = 20.0
    publisher_strength: float = 20.0
    category_strength: float = 20.0
    band_strength: float = 20.0
    # campaign, ad, ad × category, ad × category × keyword
    levels: tuple[Strength, ...] = (Strength(), Strength(), Strength(), Strength(lo=5.0, hi=500.0, default=20.0))
    iterations: int = 4
    exploration: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 <= self.exploration <= MAX_EXPLORATION:
            raise ValueError(f"exploration {self.exploration} is outside [0, {MAX_EXPLORATION}]")
        if len(self.position_prior) != MAX_POSITIONS or self.position_prior[0] != 1.0:
            raise ValueError(f"position_prior needs {MAX_POSITIONS} factors starting at 1.0")
        if len(self.levels) != 4:
            raise ValueError("levels: one Strength each for campaign, ad, ad×category, ad×category×keyword")


# A node of the chain: posterior mean, shape, rate (a tuple: read per candidate, kept cheap).
_Node = tuple[float, float, float]


def _node(p: Posterior) -> _Node:
    return (p.mean, p.shape, p.rate)


@dataclass(frozen=True, slots=True)
class CtrModel:
    """A fitted snapshot. Build with :meth:`fit` (or :meth:`prior` before any data)."""

    config: CtrConfig
    root: _Node
    campaigns: dict[str, _Node] = field(default_factory=dict)
    ads: dict[str, _Node] = field(default_factory=dict)
    ad_categories: dict[tuple[str, str], _Node] = field(default_factory=dict)
    leaves: dict[tuple[str, str, str], _Node] = field(default_factory=dict)
    strengths: tuple[float, ...] = ()  # fitted strength of campaign, ad, ad×category, leaf levels
    positions: tuple[float, ...] = ()
    publishers: dict[str, float] = field(default_factory=dict)
    categories: dict[str, float] = field(default_factory=dict)
    bands: tuple[float, ...] = ()
    impressions: int = 0
    clicks: int = 0

    @classmethod
    def prior(cls, config: CtrConfig | None = None) -> CtrModel:
        """The model before any data: pCTR = prior_ctr · s · π(o)."""
        cfg = config or CtrConfig()
        root = posterior(0.0, 0.0, cfg.prior_ctr, cfg.root_strength)
        return cls(config=cfg, root=_node(root), strengths=tuple(s.default for s in cfg.levels),
                   positions=cfg.position_prior, bands=(1.0,) * len(BAND_EDGES))

    @classmethod
    def fit(cls, cells: Mapping[CellKey, CellCounts], config: CtrConfig | None = None) -> CtrModel:
        """Fit the chain and the main effects from counted cells (see the module docstring)."""
        cfg = config or CtrConfig()
        if not cells:
            return cls.prior(cfg)
        keys = list(cells)
        counts = [cells[k] for k in keys]
        e = np.array([c.exposure for c in counts], dtype=np.float64)
        clicks = np.array([c.clicks for c in counts], dtype=np.float64)
        pos = np.array([min(max(k.position, 0), MAX_POSITIONS - 1) for k in keys], dtype=np.int64)
        bnd = np.array([min(max(k.band, 0), len(BAND_EDGES) - 1) for k in keys], dtype=np.int64)
        pub_ids = {p: i for i, p in enumerate(sorted({k.publisher for k in keys}))}
        pub = np.array([pub_ids[k.publisher] for k in keys], dtype=np.int64)

        # the chain's nodes and their parents
        cmp_ids: dict[str, int] = {}
        ad_ids: dict[str, int] = {}
        adcat_ids: dict[tuple[str, str], int] = {}
        leaf_ids: dict[tuple[str, str, str], int] = {}
        ad_parent: list[int] = []
        adcat_parent: list[int] = []
        leaf_parent: list[int] = []
        leaf_of_cell = np.empty(len(keys), dtype=np.int64)
        for i, k in enumerate(keys):
            ci = cmp_ids.setdefault(k.campaign, len(cmp_ids))
            ai = ad_ids.get(k.ad)
            if ai is None:
                ai = ad_ids[k.ad] = len(ad_ids)
                ad_parent.append(ci)
            ti = adcat_ids.get((k.ad, k.category))
            if ti is None:
                ti = adcat_ids[(k.ad, k.category)] = len(adcat_ids)
                adcat_parent.append(ai)
            li = leaf_ids.get((k.ad, k.category, k.keyword))
            if li is None:
                li = leaf_ids[(k.ad, k.category, k.keyword)] = len(leaf_ids)
                leaf_parent.append(ti)
            leaf_of_cell[i] = li
        parents = [np.zeros(len(cmp_ids), dtype=np.int64), np.array(ad_parent, dtype=np.int64),
                   np.array(adcat_parent, dtype=np.int64), np.array(leaf_parent, dtype=np.int64)]
        n_leaves = len(leaf_ids)
        leaf_clicks = np.bincount(leaf_of_cell, weights=clicks, minlength=n_leaves)

        cat_ids = {c: i for i, c in enumerate(sorted({k.category for k in keys}))}
        cat = np.array([cat_ids[k.category] for k in keys], dtype=np.int64)
        # main effects: (cell → level index, prior per level, strength, normalised to mean 1?)
        pi_prior = np.array(cfg.position_prior, dtype=np.float64)
        effects = [(pos, pi_prior, cfg.position_strength, False),
                   (pub, np.ones(len(pub_ids)), cfg.publisher_strength, True),
                   (cat, np.ones(len(cat_ids)), cfg.category_strength, True),
                   (bnd, np.ones(len(BAND_EDGES)), cfg.band_strength, True)]
        factors = [prior.copy() for _, prior, _, _ in effects]

        def product(skip: int = -1) -> np.ndarray:
            out = np.ones(len(keys))
            for j, (index, _, _, _) in enumerate(effects):
                if j != skip:
                    out = out * factors[j][index]
            return out

        def chain() -> list:
            x = e * product()
            return shrink_chain(parents, leaf_clicks, np.bincount(leaf_of_cell, weights=x, minlength=n_leaves),
                                root_prior=cfg.prior_ctr, root_strength=cfg.root_strength, bounds=cfg.levels)

        fits = chain()
        for _ in range(cfg.iterations):
            base = e * fits[-1].mean[leaf_of_cell]  # expected clicks with every main effect at 1
            for j, (index, prior, strength, normalised) in enumerate(effects):
                others = base * product(skip=j)
                size = len(prior)
                exp = np.bincount(index, weights=others, minlength=size)
                got = np.bincount(index, weights=clicks, minlength=size)
                f = (got + strength) / (exp + strength / prior)  # Gamma posterior mean around the prior
                # mean 1 over the exposure (the chain carries the level); positions: relative to the top slot
                scale = float(np.dot(exp, f)) / max(float(exp.sum()), 1e-12) if normalised else float(f[0])
                factors[j] = f / scale
            fits = chain()
        pi, phi, psi, rho = factors

        def nodes(ids: Mapping, level: int) -> dict:
            f = fits[level]
            return {key: (float(f.shape[i] / f.rate[i]), float(f.shape[i]), float(f.rate[i])) for key, i in ids.items()}

        return cls(config=cfg, root=(float(fits[0].mean[0]), float(fits[0].shape[0]), float(fits[0].rate[0])),
                   campaigns=nodes(cmp_ids, 1), ads=nodes(ad_ids, 2), ad_categories=nodes(adcat_ids, 3),
                   leaves=nodes(leaf_ids, 4), strengths=tuple(f.strength for f in fits[1:]),
                   positions=tuple(float(v) for v in pi),
                   publishers={p: float(phi[i]) for p, i in pub_ids.items()},
                   categories={c: float(psi[i]) for c, i in cat_ids.items()},
                   bands=tuple(float(v) for v in rho),
                   impressions=sum(c.impressions for c in counts), clicks=int(clicks.sum()))

    def page(self, publisher: str, category: str) -> PageCtr:
        """The model on one page (its publisher and top category, or NONE)."""
        return PageCtr(self, publisher, category)

    def position_factor(self, position: int) -> float:
        return self.positions[min(max(position, 0), MAX_POSITIONS - 1)]

    def explores(self, rng: random.Random) -> bool:
        """Whether this auction ranks by Thompson draws (probability ``config.exploration``)."""
        return rng.random() < self.config.exploration

    def predict(self, ad: Ad, *, publisher: str, category: str, keyword: str, score: float,
                position: int = 0) -> float:
        """pCTR of ``ad`` at ``position`` on a page (posterior mean): for a CPM bid, bid = CPC × this."""
        return self.page(publisher, category).quality(ad, keyword, score) * self.position_factor(position)

    def summary(self) -> dict[str, object]:
        """What the snapshot learned from, for status pages and logs."""
        return {"impressions": self.impressions, "clicks": self.clicks, "campaigns": len(self.campaigns),
                "ads": len(self.ads), "ad_categories": len(self.ad_categories), "leaves": len(self.leaves),
                "root": round(self.root[0], 6), "strengths": [round(s, 2) for s in self.strengths],
                "positions": [round(p, 4) for p in self.positions], "bands": [round(b, 4) for b in self.bands],
                "publishers": {p: round(v, 4) for p, v in self.publishers.items()},
                "categories": {c: round(v, 4) for c, v in self.categories.items()}}


class PageCtr:
    """The model on one page; :meth:`quality` is the per-candidate hot path."""

    __slots__ = ("_cat", "_factor", "_m")

    def __init__(self, model: CtrModel, publisher: str, category: str) -> None:
        self._m = model
        self._cat = category
        self._factor = model.publishers.get(publisher, 1.0) * model.categories.get(category, 1.0)

    def _relevance(self, score: float) -> float:
        return score * self._m.bands[band(score)] * self._factor

    def _theta(self, ad: Ad, keyword: str) -> float:
        m = self._m
        node = (m.leaves.get((ad.id, self._cat, keyword)) or m.ad_categories.get((ad.id, self._cat))
                or m.ads.get(ad.id) or m.campaigns.get(ad.campaign_id) or m.root)
        return node[0]

    def quality(self, ad: Ad, keyword: str, score: float) -> float:
        """pCTR at the top slot (posterior mean): the auction's quality; × π(o) for slot o."""
        return self._relevance(score) * self._theta(ad, keyword)

    def sample(self, ad: Ad, keyword: str, score: float, rng: random.Random) -> float:
        """A Thompson draw of the top-slot pCTR: from the deepest level with data, or, where the
        ad × context goes deeper than the data, from the prior of the first level without any."""
        m = self._m
        chain = ((m.leaves.get((ad.id, self._cat, keyword)), 3), (m.ad_categories.get((ad.id, self._cat)), 2),
                 (m.ads.get(ad.id), 1), (m.campaigns.get(ad.campaign_id), 0))
        theta = 0.0
        for node, level in chain:
            if node is not None:
                if level == 3:
                    theta = Posterior(node[1], node[2]).sample(rng)
                else:  # the child level below has no data: its prior around this node's mean
                    s = m.strengths[level + 1]
                    theta = Posterior(s, s / node[0]).sample(rng)
                break
        else:
            s = m.strengths[0]
            theta = Posterior(s, s / m.root[0]).sample(rng)
        return self._relevance(score) * max(theta, 1e-12)
