"""Catalog → in-memory index: tokenizer with keywords, TF-IDF/LSA vectorizer, FAISS index,
character n-gram profiles and the ads' neighbourhood graph.

Contract: :func:`build` is deterministic for the same ads (in the same order) and settings.
FAISS ids are row numbers in ``ads``; the FAISS index is an ``IndexIDMap2`` so rows can be
added and removed by id.
"""

from __future__ import annotations

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


def make_faiss(vectors: np.ndarray, ids: np.ndarray) -> faiss.IndexIDMap2:
    """Exact inner-product index over unit vectors, addressed by int64 ids."""
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(int(vectors.shape[1])))
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids.astype(np.int64))
    return index


def build(ads: Sequence[Ad], *, dense_dim: int = DEFAULT_DENSE_DIM,
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
    return assemble(ads, tokenizer, vectorizer, matrix)


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
