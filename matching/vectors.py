"""TF-IDF and dense (LSA) vectors over one shared vocabulary.

The sparse space is scikit-learn's DictVectorizer + TfidfTransformer (sublinear tf, smoothed
idf, L2 rows) over weighted term counts; the dense space is a TruncatedSVD of the ads' TF-IDF
matrix, L2-normalised, so inner product is cosine. Pages may instead be weighted by a
background IDF (:meth:`TextVectorizer.page`, see :mod:`matching.background`), and the dense
space may be cut to its leading ``dims`` components (the SVD orders them by variance, so a prefix
is a coarser LSA). All state round-trips through plain arrays
(:meth:`TextVectorizer.state` / :meth:`TextVectorizer.from_state`) — no pickles.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction import DictVectorizer
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.preprocessing import normalize as l2_normalize

DEFAULT_DENSE_DIM = 128


class TextVectorizer:
    """Maps weighted term counts to an L2-normalised TF-IDF row and a dense unit vector."""

    def __init__(self, vocabulary: list[str], idf: np.ndarray, components: np.ndarray,
                 page_idf: np.ndarray | None = None) -> None:
        self.vocabulary = vocabulary
        self._dict = DictVectorizer(dtype=np.float32)
        self._dict.feature_names_ = vocabulary
        self._dict.vocabulary_ = {t: i for i, t in enumerate(vocabulary)}
        self._tfidf = TfidfTransformer(sublinear_tf=True)
        self._tfidf.idf_ = idf.astype(np.float64)
        self.components = np.ascontiguousarray(components, dtype=np.float32)
        # terms × dims, C-contiguous: a sparse row times ``components.T`` would otherwise copy the
        # whole transposed matrix on every call (measured: 6 ms of a 22 ms match at 100k ads).
        self.projection = np.ascontiguousarray(self.components.T)
        # Page-side term weights; the catalog IDF when no background table was given.
        self.page_idf = np.asarray(idf if page_idf is None else page_idf, dtype=np.float64)
        self._unknown_idf = float(np.median(self.page_idf)) if len(self.page_idf) else 1.0

    @property
    def dim(self) -> int:
        return int(self.components.shape[0])

    @property
    def term_index(self) -> Mapping[str, int]:
        return self._dict.vocabulary_

    @property
    def idf(self) -> np.ndarray:
        return self._tfidf.idf_

    @classmethod
    def fit(cls, docs: Sequence[Mapping[str, float]] | sp.csr_matrix, dense_dim: int = DEFAULT_DENSE_DIM,
            seed: int = 0, *, terms: Sequence[str] | None = None) -> tuple[TextVectorizer, sp.csr_matrix]:
        """Fit on ad documents; returns the vectorizer and the ads' TF-IDF matrix.

        ``docs`` are term → weight mappings, or with ``terms`` (sorted) already counted: an
        ads × terms weight matrix as ``DictVectorizer`` makes of the mappings
        (:func:`matching.documents.ad_term_counts`), which spares a dict per ad.
        """
        if terms is None:
            dv = DictVectorizer(dtype=np.float32)
            counts = dv.fit_transform(docs)
            vocabulary = list(dv.feature_names_)
        else:
            counts, vocabulary = sp.csr_matrix(docs, dtype=np.float32), list(terms)
            if counts.shape[1] != len(vocabulary):
                raise ValueError(f"{counts.shape[1]} columns for {len(vocabulary)} terms")
        tfidf = TfidfTransformer(sublinear_tf=True)
        matrix = tfidf.fit_transform(counts).astype(np.float32).tocsr()
        n_docs, n_terms = matrix.shape
        dim = max(1, min(dense_dim, n_docs - 1, n_terms - 1))
        if n_docs >= 3 and n_terms >= 3:
            svd = TruncatedSVD(n_components=dim, algorithm="randomized", random_state=seed)
            svd.fit(matrix)
            components = svd.components_
        else:  # too few ads for a decomposition: a single axis along their mean direction
            mean = np.asarray(matrix.mean(axis=0)).reshape(1, -1)
            components = l2_normalize(mean) if n_terms else np.zeros((1, 0))
        vec = cls(vocabulary, tfidf.idf_, components)
        return vec, matrix

    def sparse(self, docs: Sequence[Mapping[str, float]]) -> sp.csr_matrix:
        """TF-IDF rows (L2-normalised) for weighted term counts; unknown terms are dropped."""
        return self._weighted(docs, self.idf)

    def page(self, docs: Sequence[Mapping[str, float]]) -> sp.csr_matrix:
        """Rows of sublinear tf × :attr:`page_idf`, L2-normalised; unknown terms are dropped."""
        return self._weighted(docs, self.page_idf)

    def salience(self, doc: Mapping[str, float], unknown: Iterable[str] = ()) -> dict[str, float]:
        """Catalog TF-IDF weight of each term of ``doc`` (sublinear tf × catalog idf, L2 over
        the page) — the vocabulary's terms, and the ``unknown`` terms (words of ads added since
        the fit) at the highest catalog idf, as a word in one ad would get from a refit."""
        index = self._dict.vocabulary_
        idf = self.idf
        top_idf = float(idf.max()) if len(idf) else 1.0
        extra = set(unknown)
        raw: dict[str, float] = {}
        for term, x in doc.items():
            j = index.get(term)
            if x > 0 and (j is not None or term in extra):
                raw[term] = (1.0 + float(np.log(x))) * (float(idf[j]) if j is not None else top_idf)
        for term in extra.difference(raw):  # a keyword found in the text but not a page term
            if term not in index:
                raw[term] = top_idf
        norm = float(np.sqrt(sum(v * v for v in raw.values()))) or 1.0
        return {t: v / norm for t, v in raw.items()}

    def coverage(self, doc: Mapping[str, float]) -> float:
        """Share of the page's weight (L2, sublinear tf × page idf) on terms the catalog knows.

        Terms the catalog lacks are weighted at the median page idf (the background table's
        convention for unknown words). A cosine computed on the known terms alone, times this
        share, is the cosine of the whole page: a page mostly about other things scores low
        even when its few catalog words point straight at some ads.
        """
        index = self._dict.vocabulary_
        known = unknown = 0.0
        for term, x in doc.items():
            if x <= 0:
                continue
            tf = max(1.0 + float(np.log(x)), 1e-6)
            j = index.get(term)
            if j is None:
                unknown += (tf * self._unknown_idf) ** 2
            else:
                known += (tf * float(self.page_idf[j])) ** 2
        total = known + unknown
        return float(np.sqrt(known / total)) if total > 0 else 0.0

    def _weighted(self, docs: Sequence[Mapping[str, float]], idf: np.ndarray) -> sp.csr_matrix:
        # Same arithmetic as TfidfTransformer(sublinear_tf=True) + L2 rows, without scikit-learn's
        # per-call validation, which costs more than the arithmetic for one page.
        index = self._dict.vocabulary_
        indptr, cols, vals = [0], [], []
        for doc in docs:
            for term, x in doc.items():
                j = index.get(term)
                if j is not None and x:
                    cols.append(j)
                    vals.append(x)
            indptr.append(len(cols))
        col = np.asarray(cols, dtype=np.int32)
        data = (np.log(np.asarray(vals, dtype=np.float64)) + 1.0) * idf[col]
        m = sp.csr_matrix((data, col, np.asarray(indptr)), shape=(len(docs), len(self.vocabulary)))
        m.sum_duplicates()
        lengths = np.diff(m.indptr)
        sq = np.zeros(len(docs))
        nonempty = lengths > 0
        sq[nonempty] = np.add.reduceat(m.data ** 2, m.indptr[:-1][nonempty])
        norms = np.sqrt(sq)
        norms[norms == 0] = 1.0
        m.data /= np.repeat(norms, lengths)
        return m.astype(np.float32)

    def extended(self, terms: Iterable[str]) -> TextVectorizer:
        """This vectorizer with the ``terms`` it lacks appended to its vocabulary: words of ads
        added after the fit. They get the highest catalog idf (a word of one ad, as a refit would
        give it), the median page idf (the background table's convention for unknown words) and
        no LSA loading, so existing rows, the dense space and the projection are unchanged (the
        projection array is shared, not copied)."""
        index = self._dict.vocabulary_
        new = [t for t in dict.fromkeys(terms) if t not in index]
        if not new:
            return self
        out = copy.copy(self)
        out.vocabulary = self.vocabulary + new
        out._dict = DictVectorizer(dtype=np.float32)
        out._dict.feature_names_ = out.vocabulary
        out._dict.vocabulary_ = {**index, **{t: len(self.vocabulary) + i for i, t in enumerate(new)}}
        out._tfidf = TfidfTransformer(sublinear_tf=True)
        top = float(self.idf.max()) if len(self.idf) else 1.0
        out._tfidf.idf_ = np.concatenate([self.idf, np.full(len(new), top)])
        out.page_idf = np.concatenate([self.page_idf, np.full(len(new), self._unknown_idf)])
        return out

    def project(self, sparse_rows: sp.csr_matrix, dims: int | None = None) -> np.ndarray:
        """LSA coordinates (not normalised) of TF-IDF rows; terms without a loading (appended by
        :meth:`extended`) contribute nothing."""
        proj = self.projection if dims is None else self.projection[:, :dims]
        if sparse_rows.shape[1] > proj.shape[0]:
            sparse_rows = sparse_rows[:, : proj.shape[0]]
        return np.asarray(sparse_rows @ proj, dtype=np.float32)

    def dense(self, sparse_rows: sp.csr_matrix, dims: int | None = None) -> np.ndarray:
        """Unit-length dense rows (float32, C-contiguous) for TF-IDF rows; zero rows stay zero.

        ``dims`` keeps only the leading components (a coarser LSA); None keeps all.
        """
        return unit_rows(self.project(sparse_rows, dims))

    def state(self) -> dict[str, np.ndarray]:
        """Plain arrays from which :meth:`from_state` rebuilds an identical vectorizer."""
        return {
            "vocabulary": np.array(self.vocabulary, dtype=np.str_),
            "idf": np.asarray(self.idf, dtype=np.float64),
            "components": self.components,
            "page_idf": self.page_idf,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, np.ndarray]) -> TextVectorizer:
        return cls([str(t) for t in state["vocabulary"]], state["idf"], state["components"],
                   state.get("page_idf"))


def row_dots(m: sp.csr_matrix, rows: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``m[rows] @ q`` for a dense vector ``q`` (float64), as a 1-D array: only those rows are read
    (scipy's row gather is linear in the rows taken, not in the matrix)."""
    return np.asarray(m[np.asarray(rows, dtype=np.int64)] @ q, dtype=np.float64).reshape(-1)


def sub_dots(m: sp.csr_matrix, rows: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``m[rows][:, rows] @ x`` for ascending, distinct ``rows`` (``x`` has one value per row):
    each selected row's entries in the other selected columns, found by binary search, without
    building the column-indexed sub-matrix."""
    rows = np.asarray(rows, dtype=np.int64)
    sub = m[rows]
    if not sub.nnz:
        return np.zeros(len(rows))
    cols = sub.indices
    at = np.minimum(np.searchsorted(rows, cols), len(rows) - 1)
    inside = rows[at] == cols
    owner = np.repeat(np.arange(len(rows)), np.diff(sub.indptr))[inside]
    return np.bincount(owner, weights=sub.data[inside].astype(np.float64) * x[at[inside]],
                       minlength=len(rows))


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32, C-contiguous); zero rows stay zero."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(x / norms, dtype=np.float32)
