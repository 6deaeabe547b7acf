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
- ``semantic``: cosine of the page's and the ad's sentence-encoder vectors in the catalog's
  semantic space, above the encoder's unrelated-topics baseline (:mod:`matching.semantic`) — knowledge from the encoder's training, not the
  catalog. Only for analysed pages (``PageTerms.vector`` set); 0 on the first view.

Candidates are every ad when the catalog is small (at most ``exhaustive`` or ``n`` ads); otherwise
the ads with any shared term (best ``n`` by ``tfidf``) plus the ``n`` nearest in the dense space,
so the cost stays bounded on large catalogs.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from matching.catalog import PreparedCatalog
from matching.categories import CategoryClassifier
from matching.semantic import cosines
from matching.types import PageTerms
from matching.vectors import row_dots, unit_rows

SIGNALS = ("keyword", "tfidf", "dense", "coarse", "char", "category", "semantic")


@dataclass(frozen=True, slots=True)
class Evidence:
    """Signals of the candidate ads for one page."""

    rows: np.ndarray  # candidate ad rows, ascending
    values: np.ndarray  # len(rows) × len(SIGNALS), float32, each in [0, 1]
    found: frozenset[str]  # advertiser keywords and negative keywords present in the page
    salience: Mapping[str, float]  # page TF-IDF weight of each catalog term in the page
    coverage: float  # share of the page's weight on catalog terms (TextVectorizer.coverage)


def _keyword_matrix(ad_keywords: Sequence[frozenset[str]]) -> tuple[dict[str, int], sp.csr_matrix]:
    """Ids of the distinct keywords, and an ads × keywords matrix of ones (int8: 5 bytes per ad
    keyword, 45 MB at a million ads)."""
    ids: dict[str, int] = {}
    cols = array("i")
    indptr = array("q", [0])
    for kws in ad_keywords:
        cols.extend(ids.setdefault(kw, len(ids)) for kw in kws)
        indptr.append(len(cols))
    m = sp.csr_matrix((np.ones(len(cols), dtype=np.int8), np.frombuffer(cols, dtype=np.int32),
                       np.frombuffer(indptr, dtype=np.int64)), shape=(len(ad_keywords), len(ids)))
    return ids, m


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
        self._ad_terms = ad_terms  # ads × terms: the candidates' TF-IDF rows
        self._df = np.diff(catalog.term_ad.indptr)  # ads per term (postings)
        self._ad_coarse = catalog.vectorizer.dense(catalog.term_ad.T.tocsr(), self.coarse_dim) \
            if len(catalog.ads) else np.zeros((0, self.coarse_dim), dtype=np.float32)
        self._keyword_ids, self._ad_keyword_matrix = _keyword_matrix(catalog.ad_keywords)

    def gather(self, terms: PageTerms, n_candidates: int, exhaustive: int = 0,
               postings_budget: int = 0) -> Evidence | None:
        """Signals for the page's candidate ads; None when the page shares no term with the catalog.

        ``postings_budget`` (0: none) bounds the ads looked at per page when retrieving by
        shared terms (see :meth:`_retrieve`)."""
        cat = self.catalog
        n_ads = len(cat.ads)
        vec = cat.vectorizer
        q = vec.page([terms.counts])
        semantic = self._semantic_page(terms)
        if n_ads == 0 or (q.nnz == 0 and semantic is None):
            return None
        proj = vec.project(q)  # 1 × dim LSA coordinates
        qd = unit_rows(proj)
        qc = unit_rows(proj[:, : self.coarse_dim])[0]
        if n_ads <= max(n_candidates, exhaustive):  # small catalog: score every ad, no retrieval
            rows = np.arange(n_ads)
        elif q.nnz == 0:  # an analysed page sharing no word with the catalog: its nearest ads in meaning
            assert semantic is not None
            rows = self._semantic_nearest(semantic, n_candidates)
        else:
            cand = self._retrieve(q, n_candidates, postings_budget)
            if cat.dense.ntotal:
                _, nearest = cat.dense.search(qd, min(n_candidates, cat.dense.ntotal))
                cand = np.union1d(cand, nearest[0][nearest[0] >= 0])
            rows = np.unique(cand).astype(np.int64)

        values = np.zeros((len(rows), len(SIGNALS)), dtype=np.float32)
        found = frozenset(cat.finder.find(terms.page.title + "\n" + terms.page.body, terms.terms))
        index = vec.term_index
        salience = vec.salience(terms.counts, (kw for kw in found if kw not in index))
        values[:, 0] = self._keyword_signal(found, salience, rows)
        q_dense = np.zeros(q.shape[1])
        q_dense[q.indices] = q.data
        values[:, 1] = np.clip(row_dots(self._ad_terms, rows, q_dense), 0.0, 1.0)
        values[:, 2] = np.clip(cat.ad_dense[rows].astype(np.float32) @ qd[0], 0.0, 1.0)
        values[:, 3] = np.clip(self._ad_coarse[rows] @ qc, 0.0, 1.0)
        if cat.chars is not None:
            values[:, 4] = cat.chars.scores(terms.counts, rows)
        values[:, 5] = np.clip(row_dots(self._ad_categories, rows, self._category_vector(terms.counts)), 0.0, 1.0)
        if semantic is not None:
            assert cat.ad_semantic is not None and cat.ad_semantic_norms is not None
            assert cat.semantic is not None
            values[:, 6] = cat.semantic.signal(cosines(rows, cat.ad_semantic, cat.ad_semantic_norms, semantic))
        return Evidence(rows=rows, values=values, found=found, salience=salience,
                        coverage=vec.coverage(terms.counts))

    def _semantic_page(self, terms: PageTerms) -> np.ndarray | None:
        """The page's vector in the catalog's semantic space; None on the first view or when the
        catalog has no semantic space."""
        cat = self.catalog
        if terms.vector is None or cat.semantic is None or cat.ad_semantic is None:
            return None
        return cat.semantic.project(terms.vector)[0]

    def _semantic_nearest(self, page: np.ndarray, n: int) -> np.ndarray:
        """The ``n`` ads nearest the page in the semantic space, by scanning every ad's int8 row
        in blocks (rare: only analysed pages that share no word with a large catalog)."""
        cat = self.catalog
        assert cat.ad_semantic is not None and cat.ad_semantic_norms is not None
        total = len(cat.ad_semantic)
        best = np.zeros(0, dtype=np.int64)
        best_sims = np.zeros(0, dtype=np.float32)
        for start in range(0, total, 262_144):
            rows = np.arange(start, min(total, start + 262_144))
            sims = np.concatenate([best_sims, cosines(rows, cat.ad_semantic, cat.ad_semantic_norms, page)])
            ids = np.concatenate([best, rows])
            keep = np.argpartition(-sims, n)[:n] if len(sims) > n else np.arange(len(sims))
            best, best_sims = ids[keep], sims[keep]
        return np.sort(best)

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

    def _retrieve(self, q: sp.csr_matrix, n: int, postings_budget: int) -> np.ndarray:
        """The ``n`` ads with the highest TF-IDF score over the page's terms, those terms taken
        rarest first while their postings (ads per term) fit in ``postings_budget``.

        The commonest terms of a page can each be in a large share of a big catalog (at 1M ads,
        half a million ads per page): they only add to the scores of ads found by rarer terms or
        by the dense search, as Elasticsearch's ``cutoff_frequency`` treats high-frequency terms.
        Candidates are then scored on every term (:meth:`gather`). Exact when the page's postings
        fit in the budget, as they do on small catalogs."""
        df = self._df[q.indices]
        if postings_budget and int(df.sum()) > postings_budget:
            order = np.argsort(df, kind="stable")
            keep = order[: max(1, int(np.searchsorted(np.cumsum(df[order]), postings_budget, side="right")))]
            keep.sort()
            q = sp.csr_matrix((q.data[keep], q.indices[keep], [0, len(keep)]), shape=q.shape)
        # One entry per ad sharing a retrieval term, in no particular order (sorting them cost
        # more than the product at 1M ads).
        shared = q @ self.catalog.term_ad
        nonzero = shared.data != 0
        cand, scores = shared.indices[nonzero], shared.data[nonzero]
        if len(cand) > n:
            cand = cand[np.argpartition(-scores, n)[:n]]
        return cand

    def _keyword_signal(self, found: frozenset[str], salience: Mapping[str, float],
                        rows: np.ndarray) -> np.ndarray:
        """1 − Π(1 − w) over each candidate row's keywords found in the page: Σ log(1 − w) as one
        product of the candidates' keyword rows with the found keywords' logs."""
        logs = np.zeros(len(self._keyword_ids))
        ids = self._keyword_ids
        for kw in found:
            j = ids.get(kw)
            if j is not None:
                logs[j] = math.log(max(1.0 - min(1.0, 2.0 * salience.get(kw, 0.0)), 1e-9))
        return (1.0 - np.exp(row_dots(self._ad_keyword_matrix, rows, logs))).astype(np.float32)
