"""Character n-gram space: evidence for words the catalog never saw.

Chinese compounds share morphemes: a page about 战舰 (warship) shares 舰 with ads for 舰艇 and
驱逐舰, and a page about 网购 shares 网 and 购 with 购物 and 网店, although none of those words
match exactly. Each term (a page token, an ad keyword or title word) contributes its characters and
its space-padded character bigrams (" 战", "战舰", "舰 "), weighted by the term's count; rows are
sublinear-tf × catalog IDF, L2-normalised, so a page–ad inner product is a cosine in [0, 1]. This
helps most on short pages (a headline and a few tags), where whole-word overlap is sparse.

Contract: :meth:`CharSpace.fit` is deterministic for the same ad texts; all state round-trips
through plain arrays (:meth:`CharSpace.state` / :meth:`CharSpace.from_state`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from matching.text import normalize
from matching.tokenize import normalize_keyword
from matching.types import Ad

# Splits ad titles and descriptions ("农村·三斤三两·二胎", "长话市话漫游一个价，月租低") into words.
_WORD_SPLIT = re.compile(r"[\s\W_]+")
# Terms whose gram columns are remembered (page vocabularies repeat); cleared when full.
_CACHE_TERMS = 200_000


def grams(term: str) -> list[str]:
    """Characters of ``term`` and its space-padded bigrams (spaces inside Latin terms dropped)."""
    t = term.replace(" ", "")
    if not t:
        return []
    padded = f" {t} "
    return list(t) + [padded[i:i + 2] for i in range(len(padded) - 1)]


def ad_terms(ad: Ad) -> dict[str, float]:
    """The words an ad's character profile is made of: its keywords, title and description words."""
    out: dict[str, float] = {}
    words: Iterable[str] = (
        *(normalize_keyword(k) for k in ad.keywords),
        *_WORD_SPLIT.split(normalize(ad.title)),
        *_WORD_SPLIT.split(normalize(ad.description)),
    )
    for w in words:
        if w:
            out[w] = out.get(w, 0.0) + 1.0
    return out


def _gram_counts(terms: Mapping[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for term, weight in terms.items():
        for g in grams(term):
            out[g] = out.get(g, 0.0) + weight
    return out


class CharSpace:
    """Maps weighted terms to an L2-normalised character n-gram TF-IDF row; holds the ads' rows."""

    def __init__(self, vocabulary: Sequence[str], idf: np.ndarray, ad_rows: sp.csr_matrix) -> None:
        self.vocabulary = list(vocabulary)
        self.index = {g: i for i, g in enumerate(self.vocabulary)}
        self.idf = np.asarray(idf, dtype=np.float64)
        self.ad_rows = sp.csr_matrix(ad_rows, dtype=np.float32)
        self._cache: dict[str, np.ndarray] = {}  # term → its gram columns

    @classmethod
    def fit(cls, ads: Sequence[Ad]) -> CharSpace:
        """Vocabulary, smoothed IDF (as scikit-learn's) and rows of the ads' character profiles."""
        counts = [_gram_counts(ad_terms(ad)) for ad in ads]
        vocabulary = sorted(set().union(*counts)) if counts else []
        index = {g: i for i, g in enumerate(vocabulary)}
        df = np.zeros(len(vocabulary))
        for c in counts:
            for g in c:
                df[index[g]] += 1
        idf = np.log((1 + len(ads)) / (1 + df)) + 1
        space = cls(vocabulary, idf, sp.csr_matrix((len(ads), len(vocabulary)), dtype=np.float32))
        rows = [space.vector(c, grams_given=True) for c in counts]
        ad_rows = sp.vstack(rows).tocsr() if rows else space.ad_rows
        return cls(vocabulary, idf, ad_rows)

    def for_ads(self, ads: Sequence[Ad]) -> CharSpace:
        """A space with this vocabulary and IDF holding the rows of ``ads`` (grams it lacks drop
        out): profiles of ads added after the fit, comparable with this space's rows."""
        rows = [self.vector(ad_terms(ad)) for ad in ads]
        ad_rows = sp.vstack(rows).tocsr() if rows else sp.csr_matrix((0, len(self.vocabulary)), dtype=np.float32)
        return CharSpace(self.vocabulary, self.idf, ad_rows)

    def vector(self, terms: Mapping[str, float], *, grams_given: bool = False) -> sp.csr_matrix:
        """One L2-normalised row for weighted terms (or for gram counts with ``grams_given``)."""
        counts = self._counts(terms) if not grams_given else self._counts_of_grams(terms)
        cols = np.flatnonzero(counts)
        c = counts[cols]
        vals = np.where(c >= 1, 1.0 + np.log(np.maximum(c, 1.0)), c) * self.idf[cols]
        norm = float(np.sqrt(vals @ vals)) or 1.0
        return sp.csr_matrix(((vals / norm).astype(np.float32), cols, [0, len(cols)]),
                             shape=(1, len(self.vocabulary)))

    def scores(self, terms: Mapping[str, float], rows: np.ndarray) -> np.ndarray:
        """Cosine in [0, 1] between the page's terms and each ad row in ``rows``."""
        if not len(rows) or not self.vocabulary:
            return np.zeros(len(rows), dtype=np.float32)
        counts = self._counts(terms)
        q = np.where(counts >= 1, 1.0 + np.log(np.maximum(counts, 1.0)), counts) * self.idf
        norm = float(np.sqrt(q @ q))
        if norm == 0:
            return np.zeros(len(rows), dtype=np.float32)
        return np.clip(self.ad_rows[rows] @ (q / norm).astype(np.float32), 0.0, 1.0).astype(np.float32)

    def _counts(self, terms: Mapping[str, float]) -> np.ndarray:
        ids: list[np.ndarray] = []
        weights: list[float] = []
        cache = self._cache
        for term, weight in terms.items():
            g = cache.get(term)
            if g is None:
                g = np.array([i for i in (self.index.get(x) for x in grams(term)) if i is not None],
                             dtype=np.int64)
                if len(cache) >= _CACHE_TERMS:
                    cache.clear()
                cache[term] = g
            if len(g):
                ids.append(g)
                weights.append(weight)
        if not ids:
            return np.zeros(len(self.vocabulary))
        per_gram = np.repeat(np.asarray(weights), [len(g) for g in ids])
        return np.bincount(np.concatenate(ids), weights=per_gram, minlength=len(self.vocabulary))

    def _counts_of_grams(self, gram_counts: Mapping[str, float]) -> np.ndarray:
        out = np.zeros(len(self.vocabulary))
        for g, c in gram_counts.items():
            i = self.index.get(g)
            if i is not None:
                out[i] += c
        return out

    def state(self) -> dict[str, np.ndarray]:
        """Plain arrays from which :meth:`from_state` rebuilds an identical space."""
        m = self.ad_rows
        return {
            "char_vocabulary": np.array(self.vocabulary, dtype=np.str_),
            "char_idf": self.idf,
            "char_data": m.data, "char_indices": m.indices, "char_indptr": m.indptr,
            "char_shape": np.array(m.shape, dtype=np.int64),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, np.ndarray]) -> CharSpace:
        m = sp.csr_matrix((state["char_data"], state["char_indices"], state["char_indptr"]),
                          shape=tuple(int(x) for x in state["char_shape"]))
        return cls([str(g) for g in state["char_vocabulary"]], state["char_idf"], m)
