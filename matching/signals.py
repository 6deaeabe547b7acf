"""Relevance evidence for one page: candidate retrieval and the per-ad signals, each in [0, 1].

Signals (columns of :attr:`Evidence.values`, in :data:`SIGNALS` order):

- ``keyword``: advertiser keywords found in the page, weighted by their salience in the page
  (catalog TF-IDF; a keyword the vocabulary lacks — a multi-word phrase, a word of an ad added
  since the build — at the highest catalog idf), saturating: 1 − Π(1 − min(1, 2·w)).
- ``tfidf``: cosine of the page's terms and the ad's TF-IDF row, the page weighted by sublinear
  tf × background IDF (:mod:`matching.background`), so generic words count less.
- ``dense``: cosine in the catalog's LSA space (all components) of that same page vector.
- ``coarse``: cosine in the leading components only (a coarser topic space that generalises
  across ads with few shared words).
- ``char``: cosine of character n-gram profiles (:mod:`matching.chargrams`), evidence from
  words the catalog never saw.
- ``category``: agreement of the page's and the ad's IAB categories — the cosine of their
  category score vectors (:class:`matching.categories.CategoryClassifier`, the ad classified
  from its title and keywords), knowledge from the taxonomy's seed terms rather than the catalog.

Candidates are every ad when the catalog is small (at most ``exhaustive`` or ``n`` ads); otherwise
the ads with any shared term (best ``n`` by ``tfidf``) plus the ``n`` nearest in the dense space,
so the cost stays bounded on large catalogs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from matching.catalog import PreparedCatalog
from matching.categories import CategoryClassifier
from matching.types import PageTerms
from matching.vectors import row_dots, unit_rows

SIGNALS = ("keyword", "tfidf", "dense", "coarse", "char", "category")


@dataclass(frozen=True, slots=True)
class Evidence:
    """Signals of the candidate ads for one page."""

    rows: np.ndarray  # candidate ad rows, ascending
    values: np.ndarray  # len(rows) × len(SIGNALS), float32, each in [0, 1]
    found: frozenset[str]  # advertiser keywords and negative keywords present in the page
    salience: Mapping[str, float]  # page TF-IDF weight of each catalog term in the page
    coverage: float  # share of the page's weight on catalog terms (TextVectorizer.coverage)


class EvidenceGatherer:
    """Computes :class:`Evidence` against one catalog snapshot (holds its keyword → rows index)."""

    def __init__(self, catalog: PreparedCatalog, coarse_dim: int,
                 classifier: CategoryClassifier | None = None) -> None:
        self.catalog = catalog
        self.classifier = classifier or CategoryClassifier()
        self._category_ids = {c.id: j for j, c in enumerate(self.classifier.taxonomy)}
        ad_terms = catalog.term_ad.T.tocsr()
        vocab = catalog.vectorizer.vocabulary
        self._ad_categories = self._category_matrix(
            [dict.fromkeys((vocab[i] for i in ad_terms.indices[ad_terms.indptr[r]:ad_terms.indptr[r + 1]]), 1.0)
             for r in range(ad_terms.shape[0])])
        self.coarse_dim = max(1, min(coarse_dim, catalog.vectorizer.dim))
        rows: defaultdict[str, list[int]] = defaultdict(list)
        for r, kws in enumerate(catalog.ad_keywords):
            for kw in kws:
                rows[kw].append(r)
        self._keyword_rows = {kw: np.asarray(r, dtype=np.int64) for kw, r in rows.items()}
        self._ad_coarse = catalog.vectorizer.dense(catalog.term_ad.T.tocsr(), self.coarse_dim) \
            if len(catalog.ads) else np.zeros((0, self.coarse_dim), dtype=np.float32)

    def gather(self, terms: PageTerms, n_candidates: int, exhaustive: int = 0) -> Evidence | None:
        """Signals for the page's candidate ads; None when the page shares no term with the catalog."""
        cat = self.catalog
        n_ads = len(cat.ads)
        vec = cat.vectorizer
        q = vec.page([terms.counts])
        if n_ads == 0 or q.nnz == 0:
            return None
        # The ads sharing a term with the page, as the product gives them (one entry per ad, in
        # no particular order: sorting them cost more than the product at 1M ads).
        shared = q @ cat.term_ad
        hit_rows, hit_scores = shared.indices, shared.data
        proj = vec.project(q)  # 1 × dim LSA coordinates
        qd = unit_rows(proj)
        qc = unit_rows(proj[:, : self.coarse_dim])[0]
        if n_ads <= max(n_candidates, exhaustive):  # small catalog: score every ad, no retrieval
            rows = np.arange(n_ads)
        else:
            nonzero = hit_scores != 0
            cand, scores = hit_rows[nonzero], hit_scores[nonzero]
            if len(cand) > n_candidates:
                cand = cand[np.argpartition(-scores, n_candidates)[:n_candidates]]
            if cat.dense.ntotal:
                _, nearest = cat.dense.search(qd, min(n_candidates, cat.dense.ntotal))
                cand = np.union1d(cand, nearest[0][nearest[0] >= 0])
            rows = np.unique(cand).astype(np.int64)

        values = np.zeros((len(rows), len(SIGNALS)), dtype=np.float32)
        found = frozenset(cat.finder.find(terms.page.title + "\n" + terms.page.body, terms.terms))
        index = vec.term_index
        salience = vec.salience(terms.counts, (kw for kw in found if kw not in index))
        values[:, 0] = self._keyword_signal(found, salience, rows)
        tfidf = np.zeros(n_ads, dtype=np.float32)  # scattered then read: O(hits), no sort
        tfidf[hit_rows] = hit_scores
        values[:, 1] = np.clip(tfidf[rows], 0.0, 1.0)
        values[:, 2] = np.clip(cat.ad_dense[rows] @ qd[0], 0.0, 1.0)
        values[:, 3] = np.clip(self._ad_coarse[rows] @ qc, 0.0, 1.0)
        if cat.chars is not None:
            values[:, 4] = cat.chars.scores(terms.counts, rows)
        values[:, 5] = np.clip(row_dots(self._ad_categories, rows, self._category_vector(terms.counts)), 0.0, 1.0)
        return Evidence(rows=rows, values=values, found=found, salience=salience,
                        coverage=vec.coverage(terms.counts))

    def _category_matrix(self, counts: list[Mapping[str, float]]) -> sp.csr_matrix:
        """One L2-normalised row of category scores per term-count mapping."""
        data: list[float] = []
        cols: list[int] = []
        indptr = [0]
        for c in counts:
            for cid, score in self.classifier.scores(c).items():
                cols.append(self._category_ids[cid])
                data.append(score)
            indptr.append(len(cols))
        m = sp.csr_matrix((np.asarray(data, dtype=np.float32), cols, indptr),
                          shape=(len(counts), len(self._category_ids)))
        return normalize(m) if len(counts) else m

    def _category_vector(self, counts: Mapping[str, float]) -> np.ndarray:
        """The page's category scores, L2-normalised, as one dense vector (a row of
        :meth:`_category_matrix`)."""
        v = np.zeros(len(self._category_ids))
        for cid, score in self.classifier.scores(counts).items():
            v[self._category_ids[cid]] += score
        norm = float(np.sqrt(v @ v))
        return v / norm if norm else v

    def _keyword_signal(self, found: frozenset[str], salience: Mapping[str, float],
                        rows: np.ndarray) -> np.ndarray:
        """1 − Π(1 − w) over each candidate row's keywords found in the page (``rows`` ascending)."""
        hits: list[np.ndarray] = []
        logs: list[float] = []
        for kw in found:
            ad_rows = self._keyword_rows.get(kw)
            if ad_rows is None:
                continue  # a negative keyword only
            w = min(1.0, 2.0 * salience.get(kw, 0.0))
            hits.append(ad_rows)
            logs.append(np.log(max(1.0 - w, 1e-9)))
        log_miss = np.zeros(len(rows))
        if hits and len(rows):
            ad_rows = np.concatenate(hits)
            ad_logs = np.repeat(logs, [len(h) for h in hits])
            at = np.minimum(np.searchsorted(rows, ad_rows), len(rows) - 1)  # where each would sit in rows
            ok = rows[at] == ad_rows
            np.add.at(log_miss, at[ok], ad_logs[ok])
        return (1.0 - np.exp(log_miss)).astype(np.float32)
