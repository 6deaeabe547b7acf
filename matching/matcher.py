"""Ranking ads for a page: candidate retrieval (sparse + dense) and a blend of relevance signals.

Contract: :meth:`Matcher.rank` is a pure function of the page, the catalog snapshot the matcher
was built with and its :class:`MatchConfig`; it returns at most ``k`` candidates, best first,
each with a score ≥ ``config.floor`` — possibly none. Ties break on ad id, so results are
deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from matching.analyze import analyze
from matching.keywords import KeywordFinder
from matching.tokenize import Tokenizer, normalize_keyword
from matching.types import Ad, Candidate, Page, PageTerms, Signals
from matching.vectors import TextVectorizer


class VectorSearch(Protocol):
    """Inner-product top-k search over the ads' dense vectors (a FAISS index fits)."""

    ntotal: int

    def search(self, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True, slots=True)
class MatchConfig:
    """Blend weights and limits. The weights multiply signals that each lie in [0, 1]."""

    keyword_weight: float = 0.5
    tfidf_weight: float = 0.3
    dense_weight: float = 0.2
    floor: float = 0.05
    candidates: int = 200


@dataclass(frozen=True, slots=True)
class PreparedCatalog:
    """Everything the matcher needs about a catalog snapshot; row i describes ``ads[i]``."""

    ads: Sequence[Ad]
    tokenizer: Tokenizer
    vectorizer: TextVectorizer
    term_ad: sp.csr_matrix  # terms × ads, TF-IDF weights (ad rows L2-normalised)
    ad_dense: np.ndarray  # ads × dim unit vectors, row i for ads[i]
    dense: VectorSearch  # over ad_dense; ids are row numbers
    ad_keywords: Sequence[frozenset[str]]  # normalised keywords per row
    ad_negatives: Sequence[frozenset[str]]
    finder: KeywordFinder


class Matcher:
    """Scores a page against one catalog snapshot."""

    def __init__(self, catalog: PreparedCatalog, config: MatchConfig | None = None) -> None:
        self.catalog = catalog
        self.config = config or MatchConfig()

    def analyze(self, page: Page) -> PageTerms:
        return analyze(page, self.catalog.tokenizer)

    def rank(self, terms: PageTerms, k: int,
             eligible: Callable[[Ad], bool] | None = None) -> list[Candidate]:
        """The best ``k`` eligible ads at or above the relevance floor, best first."""
        cat, cfg = self.catalog, self.config
        n_ads = len(cat.ads)
        if n_ads == 0 or k <= 0:
            return []
        q = cat.vectorizer.sparse([terms.counts])
        if q.nnz == 0:
            return []
        tfidf_scores = (q @ cat.term_ad).toarray().ravel()
        qd = cat.vectorizer.dense(q)
        n_cand = min(cfg.candidates, n_ads)
        dense_scores: dict[int, float] = {}
        if cat.dense.ntotal:
            sims, rows = cat.dense.search(qd, min(n_cand, cat.dense.ntotal))
            dense_scores = {int(r): float(s) for r, s in zip(rows[0], sims[0], strict=True) if r >= 0}
        nz = np.flatnonzero(tfidf_scores)
        if len(nz) > n_cand:
            nz = nz[np.argpartition(-tfidf_scores[nz], n_cand)[:n_cand]]
        rows_considered = sorted(set(nz.tolist()) | set(dense_scores))
        dense_all = cat.ad_dense[rows_considered] @ qd[0] if rows_considered else np.zeros(0)

        text = terms.page.title + "\n" + terms.page.body
        page_terms = terms.terms
        found = cat.finder.find(text, page_terms)
        q_weights = _term_weights(q, cat.vectorizer)
        out: list[Candidate] = []
        for row, dense_sim in zip(rows_considered, dense_all, strict=True):
            ad = cat.ads[row]
            if cat.ad_negatives[row] & found:
                continue
            if eligible is not None and not eligible(ad):
                continue
            matched = cat.ad_keywords[row] & found
            kw_signal = _keyword_signal(matched, q_weights)
            dense = max(0.0, float(dense_sim))
            signals = Signals(keyword=kw_signal, tfidf=float(tfidf_scores[row]), dense=dense)
            score = (cfg.keyword_weight * signals.keyword + cfg.tfidf_weight * signals.tfidf
                     + cfg.dense_weight * signals.dense)
            if score < cfg.floor:
                continue
            ordered = tuple(sorted(matched, key=lambda w: (-q_weights.get(w, 0.0), w)))
            out.append(Candidate(ad=ad, score=score, signals=signals, matched_keywords=ordered))
        out.sort(key=lambda c: (-c.score, c.ad.id))
        return out[:k]


def _term_weights(q: sp.csr_matrix, vec: TextVectorizer) -> dict[str, float]:
    vocab = vec.vocabulary
    return {vocab[i]: float(v) for i, v in zip(q.indices, q.data, strict=True)}


def _keyword_signal(matched: set[str] | frozenset[str], q_weights: dict[str, float]) -> float:
    """Page salience of the matched keywords, saturating: 1 - Π(1 - w)."""
    miss = 1.0
    for kw in matched:
        miss *= 1.0 - min(1.0, q_weights.get(kw, 0.02) * 2)
    return 1.0 - miss


def prepare_keywords(ads: Sequence[Ad]) -> tuple[list[frozenset[str]], list[frozenset[str]], KeywordFinder]:
    """Normalised keyword and negative-keyword sets per ad and one finder over all of them."""
    kws = [frozenset(w for w in (normalize_keyword(k) for k in ad.keywords) if w) for ad in ads]
    negs = [frozenset(w for w in (normalize_keyword(k) for k in ad.negative_keywords) if w) for ad in ads]
    every = set().union(*kws, *negs) if ads else set()
    return kws, negs, KeywordFinder(every)
