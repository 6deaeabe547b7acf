"""Catalog → in-memory index: tokenizer with keywords, TF-IDF/LSA vectorizer, FAISS index,
character n-gram profiles and the ads' neighbourhood graph.

Contract: :func:`build` is deterministic for the same ads (in the same order) and settings.
FAISS ids are row numbers in ``ads``; the FAISS index is an ``IndexIDMap2`` so rows can be
added and removed by id.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import faiss
import numpy as np
import scipy.sparse as sp

from matching.background import background_idf
from matching.catalog import PreparedCatalog, prepare_keywords
from matching.categories import seed_words
from matching.chargrams import CharSpace
from matching.documents import ad_document
from matching.match_types import keyword_rules
from matching.neighbours import neighbour_graph
from matching.tokenize import Tokenizer
from matching.types import Ad
from matching.vectors import DEFAULT_DENSE_DIM, TextVectorizer

EMPTY_CATALOG_TERM = "\x00empty-catalog"


def make_tokenizer(ads: Sequence[Ad]) -> Tokenizer:
    """jieba with every advertiser keyword and every category seed term as user words."""
    return Tokenizer([kw for ad in ads for kw in ad.keywords] + sorted(seed_words()))


# From this many ads the dense index is approximate (IVF), below it exact. An exact search costs
# n × dim multiply-adds per page (about 4 ms at 100k ads on one core); IVF scans nprobe/nlist of it.
APPROX_MIN_ADS = 50_000
_TRAIN_POINTS_PER_LIST = 64  # k-means sample size per list, faiss's guidance is 30-256


def make_faiss(vectors: np.ndarray, ids: np.ndarray, approx_min_ads: int = APPROX_MIN_ADS) -> faiss.IndexIDMap2:
    """Inner-product index over unit vectors, addressed by int64 ids: exact (flat) for catalogs
    under ``approx_min_ads``, else IVF with nlist = 4·√n lists and nprobe = nlist/8 (recall@10
    against exact search is checked in tests and by scripts/bench.py)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    d, n = int(vectors.shape[1]), len(ids)
    if n >= approx_min_ads:
        nlist = int(4 * math.sqrt(n))
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        sample = vectors[np.sort(rng.choice(n, min(n, nlist * _TRAIN_POINTS_PER_LIST), replace=False))]
        ivf.train(sample)
        ivf.nprobe = max(1, nlist // 8)
        index = faiss.IndexIDMap2(ivf)
    else:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(d))
    if n:
        index.add_with_ids(vectors, ids.astype(np.int64))
    return index


def describe(index: faiss.Index) -> str:
    """A short name of the dense index for manifests and status: exact or IVF with its settings."""
    try:
        ivf = faiss.extract_index_ivf(index)
    except RuntimeError:
        return "exact: IndexIDMap2(IndexFlatIP)"
    return f"approximate: IndexIDMap2(IndexIVFFlat nlist={ivf.nlist} nprobe={ivf.nprobe})"


def build(ads: Sequence[Ad], *, dense_dim: int = DEFAULT_DENSE_DIM, approx_min_ads: int = APPROX_MIN_ADS,
          progress: Callable[[Iterable[Ad]], Iterable[Ad]] | None = None) -> PreparedCatalog:
    """Segment every ad, fit the vector spaces on the catalog and index the dense vectors."""
    tokenizer = make_tokenizer(ads)
    seq: Iterable[Ad] = progress(ads) if progress else ads
    docs = [ad_document(ad, tokenizer) for ad in seq]
    # An empty catalog (a fresh install, every ad paused) still gets a valid, empty index: the
    # spaces are fitted on one placeholder document that no page term can reach.
    docs_for_fit = docs or [{EMPTY_CATALOG_TERM: 1.0}]
    fitted, matrix = TextVectorizer.fit(docs_for_fit, dense_dim=dense_dim)
    # Pages are weighted by general-corpus IDF (matching.background), ads by the catalog's.
    vectorizer = TextVectorizer(fitted.vocabulary, fitted.idf, fitted.components,
                                page_idf=background_idf(fitted.vocabulary))
    matrix = matrix[: len(ads)]
    dense_index = make_faiss(vectorizer.dense(matrix), np.arange(len(ads), dtype=np.int64), approx_min_ads)
    return assemble(ads, tokenizer, vectorizer, matrix, dense_index=dense_index)


def assemble(ads: Sequence[Ad], tokenizer: Tokenizer, vectorizer: TextVectorizer,
             matrix: sp.csr_matrix, dense_index: faiss.Index | None = None,
             chars: CharSpace | None = None, neighbours: sp.csr_matrix | None = None) -> PreparedCatalog:
    """Wire the parts of a catalog snapshot together (used by build and by load).

    Parts not given (the FAISS index, character profiles, neighbour graph) are computed here.
    """
    ad_dense = vectorizer.dense(matrix)
    if dense_index is None:
        dense_index = make_faiss(ad_dense, np.arange(len(ads), dtype=np.int64))
    if chars is None:
        chars = CharSpace.fit(ads)
    if neighbours is None:
        neighbours = neighbour_graph(sp.csr_matrix(matrix))
    kws, negs, finder = prepare_keywords(ads)
    return PreparedCatalog(
        ads=list(ads), tokenizer=tokenizer, vectorizer=vectorizer,
        term_ad=sp.csr_matrix(matrix.T), ad_dense=ad_dense, dense=dense_index,
        ad_keywords=kws, ad_negatives=negs, finder=finder, chars=chars, neighbours=neighbours,
        rules=[keyword_rules(ad.keywords, ad.match_types) for ad in ads],
    )
