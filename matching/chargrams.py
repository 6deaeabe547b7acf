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
from array import array
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from matching.text import normalize
from matching.tokenize import normalize_keyword
from matching.types import Ad
from matching.vectors import row_dots

# Splits ad titles and descriptions ("农村·三斤三两·二胎", "长话市话漫游一个价，月租低") into words.
_WORD_SPLIT = re.compile(r"[\s\W_]+")
# Terms whose gram columns are remembered (page vocabularies repeat); cleared when full.
_CACHE_TERMS = 200_000
_FIT_SLICE = 65_536  # ads per slice of CharSpace.fit's count matrix


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


def _ad_term_matrix(ads: Sequence[Ad], texts: tuple[Sequence[str], Sequence[str]] | None
                    ) -> tuple[sp.csr_matrix, list[str]]:
    """Each ad's :func:`ad_terms` as a row of counts over the distinct terms (first-seen order)."""
    term_ids: dict[str, int] = {}
    cols = array("i")
    indptr = array("q", [0])
    for i, ad in enumerate(ads):
        title, description = (texts[0][i], texts[1][i]) if texts is not None else (
            normalize(ad.title), normalize(ad.description))
        for words in ([normalize_keyword(k) for k in ad.keywords], _WORD_SPLIT.split(title),
                      _WORD_SPLIT.split(description)):
            for w in words:
                if w:
                    j = term_ids.get(w)
                    if j is None:
                        j = term_ids[w] = len(term_ids)
                    cols.append(j)
        indptr.append(len(cols))
    m = sp.csr_matrix((np.ones(len(cols)), np.frombuffer(cols, dtype=np.int32), np.frombuffer(indptr, dtype=np.int64)),
                      shape=(len(ads), len(term_ids)))
    m.sum_duplicates()
    return m, list(term_ids)


def _sublinear(c: np.ndarray) -> np.ndarray:
    """1 + log(c) for counts of at least one, the count itself below (fractional weights)."""
    return np.where(c >= 1, 1.0 + np.log(np.maximum(c, 1.0)), c)


class CharSpace:
    """Maps weighted terms to an L2-normalised character n-gram TF-IDF row; holds the ads' rows."""

    def __init__(self, vocabulary: Sequence[str], idf: np.ndarray, ad_rows: sp.csr_matrix) -> None:
        self.vocabulary = list(vocabulary)
        self.index = {g: i for i, g in enumerate(self.vocabulary)}
        self.idf = np.asarray(idf, dtype=np.float64)
        self.ad_rows = sp.csr_matrix(ad_rows, dtype=np.float32)
        self._cache: dict[str, np.ndarray] = {}  # term → its gram columns

    @classmethod
    def fit(cls, ads: Sequence[Ad], *, texts: tuple[Sequence[str], Sequence[str]] | None = None) -> CharSpace:
        """Vocabulary, smoothed IDF (as scikit-learn's) and rows of the ads' character profiles.

        ``texts``: the ads' titles and descriptions already normalised, if the caller has them.
        Counts are summed as sparse matrix products (ads × terms times terms × grams, each
        distinct term's grams listed once), not per ad in Python.
        """
        n = len(ads)
        term_counts, terms = _ad_term_matrix(ads, texts)
        gram_ids: dict[str, int] = {}
        gram_cols = array("i")
        gram_ptr = array("q", [0])
        for term in terms:
            for g in grams(term):
                j = gram_ids.get(g)
                if j is None:
                    j = gram_ids[g] = len(gram_ids)
                gram_cols.append(j)
            gram_ptr.append(len(gram_cols))
        first_seen = list(gram_ids)
        del gram_ids
        order = sorted(range(len(first_seen)), key=first_seen.__getitem__)
        vocabulary = [first_seen[i] for i in order]
        rank = np.empty(len(order), dtype=np.int32)
        rank[np.asarray(order, dtype=np.int64)] = np.arange(len(order), dtype=np.int32)
        term_grams = sp.csr_matrix(
            (np.ones(len(gram_cols)), rank[np.frombuffer(gram_cols, dtype=np.int32)],
             np.frombuffer(gram_ptr, dtype=np.int64)), shape=(len(terms), len(vocabulary)))
        term_grams.sum_duplicates()
        # ads × grams counts, in slices of ads (the float64 temporaries of a million ads' rows
        # would take gigabytes): first the counts (exact integers, kept as float32) and document
        # frequencies, then each slice's weights from the idf, written over its counts.
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        lengths = np.zeros(n, dtype=np.int64)
        df = np.zeros(len(vocabulary), dtype=np.int64)
        for lo in range(0, n, _FIT_SLICE):
            hi = min(n, lo + _FIT_SLICE)
            c = sp.csr_matrix(term_counts[lo:hi] @ term_grams)
            c.sum_duplicates()
            df += np.bincount(c.indices, minlength=len(vocabulary))
            lengths[lo:hi] = np.diff(c.indptr)
            parts.append((c.indices.astype(np.int32), c.data.astype(np.float32)))
        del term_counts, term_grams
        idf = np.log((1 + n) / (1 + df.astype(np.float64))) + 1
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        indices = np.empty(int(indptr[-1]), dtype=np.int32)
        data = np.empty(int(indptr[-1]), dtype=np.float32)
        for i, lo in enumerate(range(0, n, _FIT_SLICE)):
            hi = min(n, lo + _FIT_SLICE)
            cols, counts = parts[i]
            parts[i] = (cols[:0], counts[:0])  # freed as the output fills
            c = counts.astype(np.float64)
            vals = _sublinear(c) * idf[cols]
            row_lengths = lengths[lo:hi]
            sq = np.zeros(hi - lo)
            nonempty = row_lengths > 0
            sq[nonempty] = np.add.reduceat(vals * vals, (indptr[lo:hi] - indptr[lo])[nonempty])
            norms = np.sqrt(sq)
            norms[norms == 0] = 1.0
            indices[indptr[lo]:indptr[hi]] = cols
            data[indptr[lo]:indptr[hi]] = vals / np.repeat(norms, row_lengths)
        ad_rows = sp.csr_matrix((data, indices, indptr), shape=(n, len(vocabulary)))
        return cls(vocabulary, idf, ad_rows)

    def for_ads(self, ads: Sequence[Ad]) -> CharSpace:
        """A space with this vocabulary and IDF holding the rows of ``ads`` (grams it lacks drop
        out): profiles of ads added after the fit, comparable with this space's rows."""
        rows = [self.vector(ad_terms(ad)) for ad in ads]
        ad_rows = sp.vstack(rows).tocsr() if rows else sp.csr_matrix((0, len(self.vocabulary)), dtype=np.float32)
        return CharSpace(self.vocabulary, self.idf, ad_rows)

    def vector(self, terms: Mapping[str, float]) -> sp.csr_matrix:
        """One L2-normalised row for weighted terms."""
        cols, c = self._counts(terms)
        vals = _sublinear(c) * self.idf[cols]
        norm = float(np.sqrt(vals @ vals)) or 1.0
        return sp.csr_matrix(((vals / norm).astype(np.float32), cols, [0, len(cols)]),
                             shape=(1, len(self.vocabulary)))

    def scores(self, terms: Mapping[str, float], rows: np.ndarray) -> np.ndarray:
        """Cosine in [0, 1] between the page's terms and each ad row in ``rows``."""
        if not len(rows) or not self.vocabulary:
            return np.zeros(len(rows), dtype=np.float32)
        cols, c = self._counts(terms)
        vals = _sublinear(c) * self.idf[cols]
        norm = float(np.sqrt(vals @ vals))
        if norm == 0:
            return np.zeros(len(rows), dtype=np.float32)
        q = np.zeros(len(self.vocabulary))
        q[cols] = vals / norm
        return np.clip(row_dots(self.ad_rows, rows, q), 0.0, 1.0).astype(np.float32)

    def _counts(self, terms: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """The grams of weighted terms: their columns, ascending, and summed weights."""
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
            if len(g) and weight:
                ids.append(g)
                weights.append(weight)
        if not ids:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        cols, where = np.unique(np.concatenate(ids), return_inverse=True)
        per_gram = np.repeat(np.asarray(weights, dtype=np.float64), [len(g) for g in ids])
        return cols, np.bincount(where, weights=per_gram, minlength=len(cols))

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
