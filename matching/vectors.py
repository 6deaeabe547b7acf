"""TF-IDF and dense (LSA) vectors over one shared vocabulary.

The sparse space is scikit-learn's DictVectorizer + TfidfTransformer (sublinear tf, smoothed
idf, L2 rows) over weighted term counts; the dense space is a TruncatedSVD of the ads' TF-IDF
matrix, L2-normalised, so inner product is cosine. All state round-trips through plain arrays
(:meth:`TextVectorizer.state` / :meth:`TextVectorizer.from_state`) — no pickles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction import DictVectorizer
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.preprocessing import normalize as l2_normalize

DEFAULT_DENSE_DIM = 128


class TextVectorizer:
    """Maps weighted term counts to an L2-normalised TF-IDF row and a dense unit vector."""

    def __init__(self, vocabulary: list[str], idf: np.ndarray, components: np.ndarray) -> None:
        self.vocabulary = vocabulary
        self._dict = DictVectorizer(dtype=np.float32)
        self._dict.feature_names_ = vocabulary
        self._dict.vocabulary_ = {t: i for i, t in enumerate(vocabulary)}
        self._tfidf = TfidfTransformer(sublinear_tf=True)
        self._tfidf.idf_ = idf.astype(np.float64)
        self.components = np.ascontiguousarray(components, dtype=np.float32)

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
    def fit(cls, docs: Sequence[Mapping[str, float]], dense_dim: int = DEFAULT_DENSE_DIM,
            seed: int = 0) -> tuple[TextVectorizer, sp.csr_matrix]:
        """Fit on ad documents; returns the vectorizer and the ads' TF-IDF matrix."""
        dv = DictVectorizer(dtype=np.float32)
        counts = dv.fit_transform(docs)
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
        vec = cls(list(dv.feature_names_), tfidf.idf_, components)
        return vec, matrix

    def sparse(self, docs: Sequence[Mapping[str, float]]) -> sp.csr_matrix:
        """TF-IDF rows (L2-normalised) for weighted term counts; unknown terms are dropped."""
        counts = self._dict.transform(docs)
        return self._tfidf.transform(counts).astype(np.float32).tocsr()

    def dense(self, sparse_rows: sp.csr_matrix) -> np.ndarray:
        """Unit-length dense rows (float32, C-contiguous) for TF-IDF rows; zero rows stay zero."""
        out = np.asarray(sparse_rows @ self.components.T, dtype=np.float32)
        return np.ascontiguousarray(l2_normalize(out), dtype=np.float32)

    def state(self) -> dict[str, np.ndarray]:
        """Plain arrays from which :meth:`from_state` rebuilds an identical vectorizer."""
        return {
            "vocabulary": np.array(self.vocabulary, dtype=np.str_),
            "idf": np.asarray(self.idf, dtype=np.float64),
            "components": self.components,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, np.ndarray]) -> TextVectorizer:
        return cls([str(t) for t in state["vocabulary"]], state["idf"], state["components"])
