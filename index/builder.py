"""Catalog → in-memory index: tokenizer with keywords, TF-IDF/LSA vectorizer, FAISS index,
character n-gram profiles and the ads' neighbourhood graph.

Large catalogs: each distinct keyword is normalised and segmented once, titles and descriptions
are segmented in forked worker processes (from ``PARALLEL_MIN_ADS`` ads), the ads' term counts
go straight into a sparse matrix (no dict per ad), and the neighbour graph is searched by champion
lists beyond ``matching.neighbours.EXHAUSTIVE_MAX_ADS`` ads (see that module).

Contract: :func:`build` is deterministic for the same ads (in the same order) and settings,
whether or not it used worker processes.
FAISS ids are row numbers in ``ads``; the FAISS index is an ``IndexIDMap2`` so rows can be
added and removed by id.
"""

from __future__ import annotations

import gc
import itertools
import math
import multiprocessing as mp
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

import faiss
import numpy as np
import scipy.sparse as sp

from matching.background import background_idf
from matching.catalog import PreparedCatalog, prepare_keywords
from matching.categories import seed_words
from matching.chargrams import CharSpace
from matching.documents import TermCounts, ad_term_counts, merge_term_counts
from matching.encoder import SentenceEncoder
from matching.match_types import KeywordRules, keyword_rules
from matching.neighbours import EXHAUSTIVE_MAX_ADS, NEIGHBOURS, exact_knn, knn_graph, mix, neighbour_graph
from matching.semantic import SemanticSpace, quantize, row_norms
from matching.tokenize import Tokenizer
from matching.types import Ad
from matching.vectors import DEFAULT_DENSE_DIM, TextVectorizer

EMPTY_CATALOG_TERM = "\x00empty-catalog"


def make_tokenizer(ads: Sequence[Ad]) -> Tokenizer:
    """jieba with every advertiser keyword and every category seed term as user words."""
    # Each distinct keyword once (catalogs repeat them): the same words, the same dictionary.
    keywords = dict.fromkeys(kw for ad in ads for kw in ad.keywords)
    return Tokenizer([*keywords, *sorted(seed_words())])


# From this many ads the dense index is approximate (IVF), below it exact. An exact search costs
# n × dim multiply-adds per page (about 4 ms at 100k ads on one core); IVF scans nprobe/nlist of it.
APPROX_MIN_ADS = 50_000
# k-means sample per list (faiss warns below 39) and iterations (faiss's default is 25): at 1M ads
# 64 points and 25 iterations took ~100 s of the build, 40 and 10 take a fifth of it; recall@10
# of page queries against exact search stayed 0.99 at 100k ads.
_TRAIN_POINTS_PER_LIST = 40
_TRAIN_ITERATIONS = 10


def make_faiss(vectors: np.ndarray, ids: np.ndarray, approx_min_ads: int = APPROX_MIN_ADS) -> faiss.IndexIDMap2:
    """Inner-product index over unit vectors, addressed by int64 ids: exact (flat) for catalogs
    under ``approx_min_ads``, else IVF with nlist = 4·√n lists and nprobe = 2·√nlist (recall@10
    against exact search is checked in tests and by scripts/bench.py)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    d, n = int(vectors.shape[1]), len(ids)
    if n >= approx_min_ads:
        nlist = int(4 * math.sqrt(n))
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.niter = _TRAIN_ITERATIONS
        rng = np.random.default_rng(0)
        sample = vectors[np.sort(rng.choice(n, min(n, nlist * _TRAIN_POINTS_PER_LIST), replace=False))]
        ivf.train(sample)
        # Lists probed grow as √nlist, not as a fixed share: a larger catalog's lists are finer and
        # its neighbours spread over fewer of them. Recall@10 against exact search on the benchmark's
        # page queries: 100k ads (nlist 1264) nprobe 79 = nlist/16 0.984, 71 = 2·√nlist 0.982; 1M
        # ads (nlist 4000) nprobe 250 = nlist/16 0.998 in 2.05 ms a search, 126 = 2·√nlist 0.995
        # in 1.13 ms, 62 0.986 in 0.64 ms.
        ivf.nprobe = max(1, min(nlist, round(2 * math.sqrt(nlist))))
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
          progress: Callable[[Iterable[Ad]], Iterable[Ad]] | None = None,
          semantic: tuple[SentenceEncoder, np.ndarray] | None = None) -> PreparedCatalog:
    """Segment every ad, fit the vector spaces on the catalog and index the dense vectors.

    ``semantic``: the encoder and the ads' raw sentence-encoder vectors (rows in ``ads``
    order, :func:`index.encoding.encode_texts` of :func:`matching.semantic.ad_text`); without it the catalog has no semantic signal."""
    with _without_gc():
        tokenizer = make_tokenizer(ads)
        counted = _segment(ads, tokenizer, progress)
        if ads:
            fitted, matrix = TextVectorizer.fit(counted.counts, dense_dim=dense_dim, terms=counted.terms)
        else:
            # An empty catalog (a fresh install, every ad paused) still gets a valid, empty index:
            # the spaces are fitted on one placeholder document that no page term can reach.
            fitted, matrix = TextVectorizer.fit([{EMPTY_CATALOG_TERM: 1.0}], dense_dim=dense_dim)
            matrix = matrix[:0]
        # Pages are weighted by general-corpus IDF (matching.background), ads by the catalog's.
        vectorizer = TextVectorizer(fitted.vocabulary, fitted.idf, fitted.components,
                                    page_idf=background_idf(fitted.vocabulary))
        chars = CharSpace.fit(ads, texts=(counted.titles, counted.descriptions))
        del counted
        dense_index = make_faiss(vectorizer.dense(matrix), np.arange(len(ads), dtype=np.int64), approx_min_ads)
        neighbours = neighbour_graph(sp.csr_matrix(matrix))
        space, ad_semantic = None, None
        if semantic is not None:
            encoder, raw = semantic
            space = SemanticSpace.fit(encoder, raw, approx_min_ads=approx_min_ads)
            ad_semantic = quantize(space.project(raw)) if len(ads) else np.zeros((0, space.dim), np.int8)
            del raw
            neighbours = mix(neighbours, semantic_graph(ad_semantic))
        return assemble(ads, tokenizer, vectorizer, matrix, dense_index=dense_index, chars=chars,
                        neighbours=neighbours, semantic=space, ad_semantic=ad_semantic)


# Probes of the IVF search for the ads' semantic neighbours of a large catalog: a neighbour
# missed costs a little smoothing, not a ranking error, so the graph searches cheaply.
_GRAPH_NPROBE = 16


def semantic_graph(stored: np.ndarray) -> sp.csr_matrix:
    """The neighbourhood graph over the ads' int8 semantic rows: exact up to
    ``EXHAUSTIVE_MAX_ADS`` ads, else by an IVF search of every ad's nearest."""
    unit = stored.astype(np.float32) / np.maximum(row_norms(stored), 1e-6)[:, None]
    n = len(unit)
    if n <= EXHAUSTIVE_MAX_ADS:
        sims, ids = exact_knn(unit)
        return knn_graph(sims, ids)
    index = make_faiss(unit, np.arange(n, dtype=np.int64), approx_min_ads=0)
    faiss.extract_index_ivf(index).nprobe = _GRAPH_NPROBE
    k = NEIGHBOURS + 1  # the ad itself and its nearest
    sims = np.empty((n, k), dtype=np.float32)
    ids = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, 65_536):
        sims[start:start + 65_536], ids[start:start + 65_536] = index.search(unit[start:start + 65_536], k)
    return knn_graph(sims, ids)



# Segmenting (jieba, pure Python) is most of a large build's time: from PARALLEL_MIN_ADS ads on it
# runs in forked worker processes, which inherit the tokenizer instead of rebuilding it.
BUILD_WORKERS = 2
PARALLEL_MIN_ADS = 50_000
_PARTS_PER_WORKER = 4
_forked: tuple[Sequence[Ad], Tokenizer] | None = None  # what the forked workers read


def _segment(ads: Sequence[Ad], tokenizer: Tokenizer,
             progress: Callable[[Iterable[Ad]], Iterable[Ad]] | None) -> TermCounts:
    """:func:`ad_term_counts` of the catalog, in slices on worker processes when that pays."""
    global _forked
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = min(BUILD_WORKERS, cpus)
    # fork only copies the calling thread: with other threads, a lock one of them held (OpenCC's,
    # logging's) would stay locked in the workers, so a multi-threaded caller segments here.
    if (workers < 2 or len(ads) < PARALLEL_MIN_ADS or threading.active_count() > 1
            or "fork" not in mp.get_all_start_methods()):
        return ad_term_counts(ads, tokenizer, progress)
    n_parts = workers * _PARTS_PER_WORKER
    bounds = [(len(ads) * i // n_parts, len(ads) * (i + 1) // n_parts) for i in range(n_parts)]
    _forked = (ads, tokenizer)
    try:
        try:
            pool = mp.get_context("fork").Pool(workers)
        except (OSError, AssertionError):  # no processes to spare, or a daemon process
            return ad_term_counts(ads, tokenizer, progress)
        with pool:
            ticks = iter(progress(ads)) if progress else None
            parts = []
            for (lo, hi), part in zip(bounds, pool.imap(_segment_slice, bounds), strict=True):
                parts.append(part)
                if ticks is not None:
                    for _ in itertools.islice(ticks, hi - lo):
                        pass
        return merge_term_counts(parts)
    finally:
        _forked = None


def _segment_slice(bounds: tuple[int, int]) -> TermCounts:
    assert _forked is not None
    ads, tokenizer = _forked
    return ad_term_counts(ads[bounds[0]:bounds[1]], tokenizer)


@contextmanager
def _without_gc() -> Iterator[None]:
    """Cyclic garbage collection paused: the build allocates millions of small containers and
    frees them by reference counting; collections would only re-scan the live ones."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def assemble(ads: Sequence[Ad], tokenizer: Tokenizer, vectorizer: TextVectorizer,
             matrix: sp.csr_matrix, dense_index: faiss.Index | None = None,
             chars: CharSpace | None = None, neighbours: sp.csr_matrix | None = None,
             semantic: SemanticSpace | None = None, ad_semantic: np.ndarray | None = None) -> PreparedCatalog:
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
    kws, negs = _shared(kws), _shared(negs)
    return PreparedCatalog(
        ads=list(ads), tokenizer=tokenizer, vectorizer=vectorizer,
        term_ad=sp.csr_matrix(matrix.T), ad_dense=ad_dense.astype(np.float16), dense=dense_index,
        ad_keywords=kws, ad_negatives=negs, finder=finder, chars=chars, neighbours=neighbours,
        rules=_keyword_rules(ads), semantic=semantic if ad_semantic is not None else None,
        ad_semantic=ad_semantic, ad_semantic_norms=row_norms(ad_semantic) if ad_semantic is not None else None,
    )


def _keyword_rules(ads: Sequence[Ad]) -> list[KeywordRules]:
    """Each ad's :func:`keyword_rules`; the ads without declared match types (most of them)
    share one all-broad instance instead of a million equal ones (nothing mutates them)."""
    all_broad, no_keywords = keyword_rules(("-",), ()), keyword_rules((), ())
    return [keyword_rules(ad.keywords, ad.match_types) if ad.match_types
            else all_broad if ad.keywords else no_keywords for ad in ads]


def _shared(sets: list[frozenset[str]]) -> list[frozenset[str]]:
    """The same sets, equal ones as one object: every ad without negative keywords has an empty
    set (216 bytes each, 0.2 GB at 1M ads), and a campaign's ads often repeat a keyword set."""
    seen: dict[frozenset[str], frozenset[str]] = {}
    return [seen.setdefault(x, x) for x in sets]
