"""Ad → weighted term counts: the ad's side of the shared vector space.

Contract: :func:`ad_document` gives one ad's terms and weights; :func:`ad_term_counts` gives the
same for a whole catalog as one sparse matrix, row i equal to ``ad_document(ads[i])`` term for
term and weight for weight.
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from matching.text import normalize
from matching.tokenize import Tokenizer, normalize_keyword
from matching.types import Ad

# Keywords are what the advertiser paid for: they weigh more than words of the ad copy.
KEYWORD_WEIGHT = 2.0
TITLE_WEIGHT = 1.0
DESCRIPTION_WEIGHT = 0.5


def ad_document(ad: Ad, tokenizer: Tokenizer) -> dict[str, float]:
    """Weighted term counts for an ad: whole keywords, their sub-words, title and description."""
    counts: defaultdict[str, float] = defaultdict(float)
    for kw in ad.keywords:
        norm = normalize_keyword(kw)
        if not norm:
            continue
        counts[norm] += KEYWORD_WEIGHT
        for tok in tokenizer.tokens(norm):
            if tok != norm:
                counts[tok] += KEYWORD_WEIGHT / 2
    for tok in tokenizer.tokens(normalize(ad.title)):
        counts[tok] += TITLE_WEIGHT
    for tok in tokenizer.tokens(normalize(ad.description)):
        counts[tok] += DESCRIPTION_WEIGHT
    return dict(counts)


@dataclass(frozen=True, slots=True)
class TermCounts:
    """A catalog's ad documents: ``counts[i, j]`` is the weight of ``terms[j]`` in ad i.

    ``terms`` is sorted and ``counts`` (float32 CSR, sorted indices, no explicit duplicates) is
    what scikit-learn's ``DictVectorizer(dtype=np.float32).fit_transform`` makes of the
    :func:`ad_document` dicts. ``titles`` and ``descriptions`` are the ads' normalised texts.
    """

    terms: list[str]
    counts: sp.csr_matrix
    titles: list[str]
    descriptions: list[str]


def ad_term_counts(ads: Sequence[Ad], tokenizer: Tokenizer,
                   progress: Callable[[Iterable[Ad]], Iterable[Ad]] | None = None) -> TermCounts:
    """Every ad's :func:`ad_document` as one matrix, built without a dict per ad.

    A keyword's terms and weights are worked out once per distinct keyword string (catalogs
    repeat keywords across many ads); titles and descriptions are segmented per ad (the
    tokenizer remembers recurring blocks). Weights are multiples of ½, so summing them in any
    order gives exactly the dicts' values.
    """
    vocab: dict[str, int] = {}
    keyword_terms: dict[str, tuple[list[int], list[float]]] = {}
    cols = array("i")
    vals = array("f")
    indptr = array("q", [0])
    titles: list[str] = []
    descriptions: list[str] = []
    tokens = tokenizer.tokens

    def term_id(term: str) -> int:
        j = vocab.get(term)
        if j is None:
            j = vocab[term] = len(vocab)
        return j

    for ad in (progress(ads) if progress else ads):
        for kw in ad.keywords:
            got = keyword_terms.get(kw)
            if got is None:
                norm = normalize_keyword(kw)
                ids: list[int] = []
                weights: list[float] = []
                if norm:
                    ids.append(term_id(norm))
                    weights.append(KEYWORD_WEIGHT)
                    for tok in tokens(norm):
                        if tok != norm:
                            ids.append(term_id(tok))
                            weights.append(KEYWORD_WEIGHT / 2)
                got = keyword_terms[kw] = (ids, weights)
            cols.extend(got[0])
            vals.extend(got[1])
        title = normalize(ad.title)
        description = normalize(ad.description)
        titles.append(title)
        descriptions.append(description)
        title_ids = [term_id(t) for t in tokens(title)]
        cols.extend(title_ids)
        vals.extend([TITLE_WEIGHT] * len(title_ids))
        description_ids = [term_id(t) for t in tokens(description)]
        cols.extend(description_ids)
        vals.extend([DESCRIPTION_WEIGHT] * len(description_ids))
        indptr.append(len(cols))
    # first-seen ids → ranks in the sorted vocabulary (DictVectorizer's column order)
    first_seen = list(vocab)
    vocab.clear()
    keyword_terms.clear()
    order = sorted(range(len(first_seen)), key=first_seen.__getitem__)
    terms = [first_seen[i] for i in order]
    rank = np.empty(len(order), dtype=np.int32)
    rank[np.asarray(order, dtype=np.int64)] = np.arange(len(order), dtype=np.int32)
    index_dtype = np.int32 if len(cols) < 2**31 else np.int64
    col = rank[np.frombuffer(cols, dtype=np.int32)].astype(index_dtype, copy=False)
    del cols
    counts = sp.csr_matrix((np.frombuffer(vals, dtype=np.float32).copy(), col,
                            np.frombuffer(indptr, dtype=np.int64).astype(index_dtype)),
                           shape=(len(indptr) - 1, len(terms)))
    counts.sum_duplicates()  # also sorts each row's indices
    return TermCounts(terms, counts, titles, descriptions)


def merge_term_counts(parts: Sequence[TermCounts]) -> TermCounts:
    """The :class:`TermCounts` of consecutive slices of a catalog, as one (what
    :func:`ad_term_counts` gives for the whole catalog)."""
    if len(parts) == 1:
        return parts[0]
    terms = sorted(set().union(*(p.terms for p in parts)))
    index = {t: j for j, t in enumerate(terms)}
    blocks = []
    for p in parts:
        # sorted local terms → sorted global positions: each row's indices stay sorted
        where = np.fromiter((index[t] for t in p.terms), dtype=np.int64, count=len(p.terms))
        m = p.counts
        blocks.append(sp.csr_matrix((m.data, where[m.indices], m.indptr), shape=(m.shape[0], len(terms))))
    counts = sp.csr_matrix(sp.vstack(blocks, format="csr"), dtype=np.float32)
    if counts.nnz < 2**31:
        counts.indices = counts.indices.astype(np.int32, copy=False)
        counts.indptr = counts.indptr.astype(np.int32, copy=False)
    return TermCounts(terms, counts, [t for p in parts for t in p.titles],
                      [d for p in parts for d in p.descriptions])
