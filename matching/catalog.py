"""A catalog snapshot as the matcher sees it: the ads and every structure built over them.

Row i of every array, matrix and sequence here describes ``ads[i]``; the dense index's ids are
row numbers. Built by :func:`index.builder.build` (or loaded by :func:`index.artifact.load`) and
never mutated: a new catalog version is a new snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from matching.chargrams import CharSpace
from matching.keywords import KeywordFinder
from matching.match_types import KeywordRules
from matching.semantic import SemanticSpace
from matching.tokenize import Tokenizer, normalize_keyword
from matching.types import Ad
from matching.vectors import TextVectorizer


class VectorSearch(Protocol):
    """Inner-product top-k search over the ads' dense vectors (a FAISS index fits)."""

    ntotal: int

    def search(self, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True, slots=True)
class PreparedCatalog:
    """Everything the matcher needs about a catalog snapshot; row i describes ``ads[i]``.

    ``chars``, ``neighbours`` and ``semantic`` may be None (a catalog assembled by hand): the
    matcher then scores without the character signal, neighbour support or semantic signal.
    """

    ads: Sequence[Ad]
    tokenizer: Tokenizer
    vectorizer: TextVectorizer
    term_ad: sp.csr_matrix  # terms × ads, TF-IDF weights (ad rows L2-normalised)
    # ads × dim unit vectors, row i for ads[i], in float16: only the candidates' rows are read (their
    # cosine with the page, to ±0.001); the search itself runs on FAISS's float32 copy. Half the
    # memory of float32: 256 MB less at a million ads.
    ad_dense: np.ndarray
    dense: VectorSearch  # over the float32 vectors; ids are row numbers
    ad_keywords: Sequence[frozenset[str]]  # normalised keywords per row
    ad_negatives: Sequence[frozenset[str]]
    finder: KeywordFinder
    chars: CharSpace | None = None  # character n-gram profiles of the ads
    neighbours: sp.csr_matrix | None = None  # ads × ads, row-normalised k-NN weights
    rules: Sequence[KeywordRules] = ()  # declared match types per row (empty: all broad)
    semantic: SemanticSpace | None = None  # the space of the ads' sentence-encoder vectors
    # ads × semantic.dim int8 rows (unit vectors × 127) and their norms: only candidates' rows are read
    ad_semantic: np.ndarray | None = None
    ad_semantic_norms: np.ndarray | None = None


def prepare_keywords(ads: Sequence[Ad]) -> tuple[list[frozenset[str]], list[frozenset[str]], KeywordFinder]:
    """Normalised keyword and negative-keyword sets per ad and one finder over all of them."""
    kws = [frozenset(w for w in (normalize_keyword(k) for k in ad.keywords) if w) for ad in ads]
    negs = [frozenset(w for w in (normalize_keyword(k) for k in ad.negative_keywords) if w) for ad in ads]
    every = set().union(*kws, *negs) if ads else set()
    return kws, negs, KeywordFinder(every)
