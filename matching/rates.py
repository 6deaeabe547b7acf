"""Rates of rare events shrunk along a hierarchy (empirical Bayes, Gamma–Poisson), pure.

A *rate* is events per unit of exposure: clicks per expected click (the CTR model's exposure is
each impression's reference click-through, :mod:`matching.ctr`), or conversions per click (a
conversion-rate model's exposure is one per click). Nodes form a chain of nested levels (root →
campaign → ad → …); each node's rate has a Gamma prior centred on its parent's posterior mean,
so a node with little data stays near its parent and one with much data follows its own counts.

Contract, for a node with ``events`` C and ``exposure`` X under a parent with posterior mean P
and a level strength m (prior pseudo-events)::

    prior      Gamma(shape=m, rate=m / P)                 (mean P)
    posterior  Gamma(shape=m + C, rate=m / P + X)
    mean       (C + m) / (X + m / P)

which is also the Beta–Binomial posterior mean ``(C + M·P) / (X + M)`` with M = m / P pseudo-trials,
so for a conversion rate per click (X = clicks) the same code gives the usual shrunk estimate.
More events never lower the mean, more exposure without events never raises it, and the mean
lies between the node's own rate C / X and its parent's P.

``m`` per level is fitted from the data by the method of moments (how far the level's nodes
spread around their parents beyond what Poisson noise explains) and clamped to ``[lo, hi]``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Posterior:
    """A Gamma posterior over a rate."""

    shape: float
    rate: float

    @property
    def mean(self) -> float:
        return self.shape / self.rate

    def sample(self, rng: random.Random) -> float:
        """One draw (Thompson sampling), deterministic given ``rng``'s state."""
        return rng.gammavariate(self.shape, 1.0 / self.rate)


def posterior(events: float, exposure: float, prior_mean: float, strength: float) -> Posterior:
    """The posterior of one node's rate: ``strength`` pseudo-events at ``prior_mean``, then the data."""
    if prior_mean <= 0 or strength <= 0:
        raise ValueError("prior_mean and strength must be positive")
    return Posterior(strength + events, strength / prior_mean + exposure)


@dataclass(frozen=True, slots=True)
class Strength:
    """Bounds and default of a level's prior strength (pseudo-events)."""

    lo: float = 2.0
    hi: float = 200.0
    default: float = 10.0


def fit_strength(events: np.ndarray, exposure: np.ndarray, parent_mean: np.ndarray, bounds: Strength) -> float:
    """Method-of-moments strength of one level: with C ~ Poisson(θ·P·X) and θ ~ Gamma(m, m),
    E[(C − P·X)² − C] = (P·X)² / m, so 1/m ≈ Σ((C − P·X)² − C) / Σ (P·X)².

    The default when the level has too little exposure to tell (fewer than 2 nodes with an
    expected event), clamped to the bounds otherwise (a level whose nodes spread no more than
    noise gets the upper bound: shrink hard)."""
    mu = parent_mean * exposure
    used = mu > 0
    if int(np.count_nonzero(mu >= 1.0)) < 2:
        return bounds.default
    c, mu = events[used], mu[used]
    excess = float(np.sum((c - mu) ** 2 - c))
    scale = float(np.sum(mu * mu))
    if excess <= 0 or scale <= 0:
        return bounds.hi
    return float(min(bounds.hi, max(bounds.lo, scale / excess)))


@dataclass(frozen=True, slots=True)
class LevelFit:
    """One level's posteriors (arrays over its nodes) and the strength used."""

    shape: np.ndarray
    rate: np.ndarray
    strength: float

    @property
    def mean(self) -> np.ndarray:
        return self.shape / self.rate


def shrink_chain(parents: Sequence[np.ndarray], events: np.ndarray, exposure: np.ndarray, *,
                 root_prior: float, root_strength: float, bounds: Sequence[Strength]) -> list[LevelFit]:
    """Posteriors of every node of a chain of nested levels, root first.

    ``parents[k]`` maps each node of level k+1 to its parent's index in level k (level 0 is the
    single root); ``events`` and ``exposure`` are per node of the deepest level, and every other
    level's counts are the sums of its children's. ``bounds[k]`` bounds level k+1's strength.
    """
    if len(bounds) != len(parents):
        raise ValueError("one Strength per level below the root")
    sizes = [1]
    for p in parents:
        sizes.append(len(p))
    # counts bottom-up
    ev: list[np.ndarray] = [np.zeros(0)] * len(sizes)
    ex: list[np.ndarray] = [np.zeros(0)] * len(sizes)
    ev[-1], ex[-1] = np.asarray(events, dtype=np.float64), np.asarray(exposure, dtype=np.float64)
    for k in range(len(sizes) - 1, 0, -1):
        parent = parents[k - 1]
        ev[k - 1] = np.bincount(parent, weights=ev[k], minlength=sizes[k - 1]).astype(np.float64)
        ex[k - 1] = np.bincount(parent, weights=ex[k], minlength=sizes[k - 1]).astype(np.float64)
    # posteriors top-down
    root = posterior(float(ev[0][0]), float(ex[0][0]), root_prior, root_strength)
    fits = [LevelFit(np.array([root.shape]), np.array([root.rate]), root_strength)]
    for k in range(1, len(sizes)):
        parent_mean = fits[k - 1].mean[parents[k - 1]]
        m = fit_strength(ev[k], ex[k], parent_mean, bounds[k - 1])
        fits.append(LevelFit(m + ev[k], m / parent_mean + ex[k], m))
    return fits
