"""Ranking ads for a page: a blend of relevance signals, smoothed over the catalog's neighbourhoods.

An ad's *base* score is a weighted sum of its signals (:mod:`matching.signals`, each in [0, 1]);
its *neighbour support* is the weighted mean of the base scores of its neighbourhood in the catalog
— its nearest ads and itself (:mod:`matching.neighbours`); its final score is ``(1 − μ)·base + μ·support`` with
μ the blend's ``neighbours`` weight. A page is ranked with :attr:`MatchConfig.first_view` until
its sentence-encoder vector is known, then with :attr:`MatchConfig.analysed`, which adds the
semantic signal (:mod:`matching.semantic`). The lexical signals are measured on the page's catalog
words; ``coverage`` (:meth:`matching.vectors.TextVectorizer.coverage`, the same for every ad of a
page) scales them by how much of the page those words are, so a page mostly about things no ad
covers scores low everywhere and falls under the floor (on the first view it scales the whole
score; the semantic signal reads the whole page and is not scaled). With weights summing to one
the score lies in [0, 1].

Contract: :meth:`Matcher.rank` is a pure function of the page, the catalog snapshot the matcher
was built with and its :class:`MatchConfig`; it returns at most ``k`` candidates, best first,
each with a score ≥ ``config.floor`` — possibly none. Ties break on ad id, so results are
deterministic. An ad's score does not depend on which other ads are eligible: ``eligible`` and
negative keywords only remove ads from the result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from matching.analyze import analyze
from matching.catalog import PreparedCatalog, VectorSearch, prepare_keywords
from matching.categories import Category, CategoryClassifier, is_sensitive
from matching.signals import SIGNALS, Evidence, EvidenceGatherer
from matching.types import Ad, Candidate, Page, PageTerms, Signals
from matching.vectors import sub_dots

__all__ = ["ANALYSED", "FIRST_VIEW", "Blend", "MatchConfig", "Matcher", "PreparedCatalog", "VectorSearch", "prepare_keywords"]


@dataclass(frozen=True, slots=True)
class Blend:
    """Weights of one blend: one per signal (each signal lies in [0, 1]) and the neighbour
    weight μ. Fitted by ``scripts/fit_blend.py`` (see :class:`MatchConfig`)."""

    keyword: float
    tfidf: float
    dense: float
    coarse: float
    char: float
    category: float
    semantic: float = 0.0
    neighbours: float = 0.5

    @property
    def weights(self) -> np.ndarray:
        """Signal weights in :data:`matching.signals.SIGNALS` order."""
        return np.array([getattr(self, s) for s in SIGNALS], dtype=np.float32)

    @classmethod
    def only(cls, signal: str) -> Blend:
        """A blend that ranks by one signal alone, without neighbour support (for evaluation)."""
        return cls(**{s: float(s == signal) for s in SIGNALS}, neighbours=0.0)


# The first view of a page (lexical signals only) and an analysed page (the semantic signal too).
FIRST_VIEW = Blend(keyword=0.176, tfidf=0.079, dense=0.097, coarse=0.134, char=0.109, category=0.405,
                   neighbours=0.75)
ANALYSED = Blend(keyword=0.068, tfidf=0.012, dense=0.029, coarse=0.157, char=0.008, category=0.307,
                 semantic=0.419, neighbours=0.75)


@dataclass(frozen=True, slots=True)
class MatchConfig:
    """Blend weights and limits.

    ``first_view`` ranks a page by its lexical signals alone (the semantic weight is 0): how a
    page is served the first time it is seen. ``analysed`` ranks a page whose sentence-encoder
    vector is known (:attr:`PageTerms.vector`). Both were fitted by ``scripts/fit_blend.py``: a
    linear scorer trained with a listwise (softmax) loss on both labelled evaluation tracks (long
    news articles and short headlines), checked by 5-fold cross-validation by page and across
    tracks, then rescaled to sum to one; the neighbour weights were chosen on the cross-validated
    scores. See docs/relevance.md for the figures.
    """

    first_view: Blend = FIRST_VIEW
    analysed: Blend = ANALYSED
    coarse_dim: int = 32  # leading LSA components of the ``coarse`` signal
    floor: float = 0.05
    category_min_score: float = 0.2  # a page is in a category (and sensitive) from this score
    candidates: int = 200  # ads retrieved per page from a catalog larger than ``exhaustive``
    exhaustive: int = 2000  # catalogs up to this many ads are scored in full, without retrieval
    # Ads looked at per page when retrieving candidates by shared terms, rarest terms first; the
    # commonest terms past it only score ads found otherwise (EvidenceGatherer._retrieve).
    postings_budget: int = 100_000

    def blend(self, analysed: bool) -> Blend:
        return self.analysed if analysed else self.first_view

    @classmethod
    def single(cls, signal: str, **limits: float) -> MatchConfig:
        """A configuration ranking every page by one signal (or ``base``: each blend without
        neighbour support), for evaluation."""
        if signal == "base":
            return cls(first_view=replace(FIRST_VIEW, neighbours=0.0), analysed=replace(ANALYSED, neighbours=0.0),
                       **limits)  # type: ignore[arg-type]
        only = Blend.only(signal)
        return cls(first_view=only, analysed=only, **limits)  # type: ignore[arg-type]


assert len(SIGNALS) == 7  # Blend lists one weight per signal


@dataclass(frozen=True, slots=True)
class Scored:
    """A page's candidate ads (``evidence.rows``) with their base, support and final scores."""

    evidence: Evidence
    base: np.ndarray
    support: np.ndarray
    score: np.ndarray


class Matcher:
    """Scores a page against one catalog snapshot."""

    def __init__(self, catalog: PreparedCatalog, config: MatchConfig | None = None,
                 classifier: CategoryClassifier | None = None) -> None:
        self.catalog = catalog
        self.config = config or MatchConfig()
        self._classifier = classifier or CategoryClassifier()
        self._evidence = EvidenceGatherer(catalog, self.config.coarse_dim, self._classifier)
        # Rank of each row's ad id, so ties can break on id with one vectorised sort.
        ids = [ad.id for ad in catalog.ads]
        self._id_rank = np.empty(len(ids), dtype=np.int64)
        self._id_rank[np.argsort(np.array(ids, dtype=object), kind="stable")] = np.arange(len(ids))

    @property
    def classifier(self) -> CategoryClassifier:
        return self._classifier

    def analyze(self, page: Page) -> PageTerms:
        return analyze(page, self.catalog.tokenizer)

    def categorize(self, terms: PageTerms) -> list[tuple[Category, float]]:
        """The page's IAB categories (at most three, score ≥ ``config.category_min_score``)."""
        return self._classifier.classify(terms.counts, top=3, min_score=self.config.category_min_score)

    def scores(self, terms: PageTerms) -> Scored | None:
        """Signals, base score, neighbour support and final score of the page's candidate ads.

        The base score is ``coverage · (lexical signals · weights) + semantic · weight``: the
        lexical signals are measured on the page's catalog words only, so they are scaled by how
        much of the page those words are; the semantic signal reads the whole page (its
        passages) and is not. None when the page shares no term with the catalog and has no
        vector. Exposed for evaluation and for fitting the blend (scripts/fit_blend.py);
        :meth:`rank` selects from the same figures.
        """
        cfg = self.config
        ev = self._evidence.gather(terms, cfg.candidates, cfg.exhaustive, cfg.postings_budget)
        if ev is None:
            return None
        blend = cfg.blend(terms.vector is not None and self.catalog.ad_semantic is not None)
        w = blend.weights
        base = ev.coverage * (ev.values[:, :-1] @ w[:-1]) + ev.values[:, -1] * w[-1]
        nb = self.catalog.neighbours
        if nb is None:
            support, mu = np.zeros_like(base), 0.0
        else:
            support, mu = sub_dots(nb, ev.rows, base).astype(np.float32), blend.neighbours
        score = (1.0 - mu) * base + mu * support
        return Scored(evidence=ev, base=base, support=support, score=score)

    def rank(self, terms: PageTerms, k: int, eligible: Callable[[Ad], bool] | None = None,
             categories: Sequence[tuple[Category, float]] | None = None,
             floor: float | None = None) -> list[Candidate]:
        """The best ``k`` eligible ads at or above the relevance floor (``floor``, default
        ``config.floor``: a preview asks for lower), best first.

        An ad is left out when the page has one of its negative keywords, when its keywords are
        all exact/phrase and none matches, when the page is outside its target categories or in
        an excluded one, and when the page is sensitive and the ad has not opted in.
        ``categories`` defaults to :meth:`categorize`.
        """
        cat, cfg = self.catalog, self.config
        floor = cfg.floor if floor is None else floor
        if not cat.ads or k <= 0:
            return []
        scored = self.scores(terms)
        if scored is None:
            return []
        if categories is None:
            categories = self.categorize(terms)
        page_cats = {c.id for c, _ in categories} | {c.parent for c, _ in categories if c.parent}
        sensitive = is_sensitive(categories)
        original = terms.page.original
        ev, score, support = scored.evidence, scored.score, scored.support
        out: list[Candidate] = []
        for i in np.lexsort((self._id_rank[ev.rows], -score)):
            if score[i] < floor or len(out) == k:
                break
            row = int(ev.rows[i])
            ad = cat.ads[row]
            if cat.ad_negatives[row] & ev.found:
                continue
            rules = cat.rules[row] if cat.rules else None
            if rules is not None and not rules.admits(ev.found, original):
                continue
            if not _category_allows(ad, page_cats, sensitive):
                continue
            if eligible is not None and not eligible(ad):
                continue
            v = ev.values[i]
            signals = Signals(keyword=float(v[0]), tfidf=float(v[1]), dense=float(v[2]),
                              coarse=float(v[3]), char=float(v[4]), category=float(v[5]), semantic=float(v[6]),
                              neighbours=float(support[i]), coverage=ev.coverage)
            matched = cat.ad_keywords[row] & ev.found
            ordered = tuple(sorted(matched, key=lambda w: (-ev.salience.get(w, 0.0), w)))
            types = rules.types_of(ordered) if rules is not None else ("broad",) * len(ordered)
            out.append(Candidate(ad=ad, score=float(score[i]), signals=signals, matched_keywords=ordered,
                                 match_types=types))
        return out


def _category_allows(ad: Ad, page_cats: set[str], sensitive: bool) -> bool:
    if sensitive and not ad.allow_sensitive:
        return False
    if ad.target_categories and not page_cats.intersection(ad.target_categories):
        return False
    return not (ad.exclude_categories and page_cats.intersection(ad.exclude_categories))
