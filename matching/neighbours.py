"""The catalog's neighbourhood graph: which ads are about the same thing as which.

Advertisers in one market buy overlapping keywords, so an ad's nearest ads by TF-IDF cosine are
mostly about its topic. Each ad keeps its ``k`` nearest other ads, weighted by similarity, and
itself with weight one (its similarity to itself); the row is normalised to sum to one. At match
time an ad's *neighbour support* is the weighted mean of its neighbourhood's scores for the page,
so an ad with only weak neighbours (a small catalog of unrelated ads) keeps mostly its own score
instead of taking a stranger's; blending it in lets a page that matched three keywords of one
ad lift the ads around it that share that ad's topic but happen to miss those exact words
(pseudo-relevance over the catalog: no page is used to build it).

Catalogs up to :data:`EXHAUSTIVE_MAX_ADS` ads compare every ad with every other. Larger ones
cannot (the comparisons grow with the square of the catalog: ~100 s at 100k ads, some 10⁴ s at a
million), so beyond it the nearest ads are searched among *candidates*, approximately: each term
keeps a *champion list* of the :data:`CHAMPIONS` ads that weigh it most (none for terms in more
than :data:`COMMON_SHARE` of the ads, such as ad-copy phrases), an ad's candidates are the
:data:`CANDIDATES` ads scoring highest over the champion lists of its terms, and those are scored
by their exact TF-IDF cosine, of which the ``k`` best are kept. Weights are always exact cosines;
only ads outside every candidate list can be missed. Measured against the exhaustive search on
the benchmark catalogs (scripts/bench_catalog.py, 1,000 ads sampled): at 100k ads it finds 84%
of the exhaustive neighbours and the neighbours it keeps have 98% of their summed similarity; at
1M ads, where a popular topic has thousands of near-equally similar ads, 33% and 84%. Dense (LSA)
neighbours were tried as candidates and kept less: 77% at 100k, 69% at 1M, and slower.

Contract: :func:`neighbour_graph` is deterministic for the same rows and returns a CSR
matrix ads × ads with non-negative rows summing to one, the diagonal included.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

NEIGHBOURS = 10
EXHAUSTIVE_MAX_ADS = 20_000
CHAMPIONS = 128
CANDIDATES = 32
COMMON_SHARE = 0.01
WORKERS = 2  # threads of the approximate search
_PART = 1 << 14  # rows per task of the approximate search
_CHUNK = 128  # rows of the ad × ad similarity held densely at once during the exhaustive search
_CELLS = 1 << 22  # entries of a dense work array of the approximate search (16 MB of float32)


def neighbour_graph(ad_rows: sp.csr_matrix, k: int = NEIGHBOURS, *,
                    exhaustive_max: int = EXHAUSTIVE_MAX_ADS) -> sp.csr_matrix:
    """Row-normalised graph of each ad's ``k`` nearest other ads plus itself (weight one), over
    L2-normalised ad rows; exhaustive up to ``exhaustive_max`` ads, else by champion lists."""
    n = ad_rows.shape[0]
    k = max(0, min(k, n - 1))
    if k == 0:
        return sp.identity(n, dtype=np.float32, format="csr")
    a = sp.csr_matrix(ad_rows, dtype=np.float32)
    if n > exhaustive_max:
        return _approximate(a, k)
    at = sp.csr_matrix(a.T)
    indptr = [0]
    indices: list[np.ndarray] = []
    data: list[np.ndarray] = []
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        sims = (a[start:stop] @ at).toarray()
        sims[np.arange(stop - start), np.arange(start, stop)] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < n - 1 else np.argsort(-sims, axis=1)[:, :k]
        for r in range(stop - start):
            cols = top[r]
            w = sims[r, cols]
            keep = w > 0
            cols = np.append(cols[keep], start + r)
            w = np.append(w[keep], 1.0)
            order = np.argsort(cols)
            indices.append(cols[order].astype(np.int32))
            data.append((w[order] / w.sum()).astype(np.float32))
            indptr.append(indptr[-1] + len(cols))
    return sp.csr_matrix((np.concatenate(data), np.concatenate(indices), np.asarray(indptr)), shape=(n, n))


def _approximate(a: sp.csr_matrix, k: int) -> sp.csr_matrix:
    n = a.shape[0]
    if not a.has_canonical_format:
        a = a.copy()
        a.sum_duplicates()
    champions = _champion_lists(a, CHAMPIONS, COMMON_SHARE)
    per_ad = max(CANDIDATES, k)
    cand = np.full((n, per_ad), -1, dtype=np.int64)
    sims = np.full((n, per_ad), -np.inf, dtype=np.float32)

    def work(part: tuple[int, int]) -> None:
        start, stop = part
        got = _candidates(a, champions, per_ad, start, stop)
        rows = np.repeat(np.arange(start, stop, dtype=np.int64), per_ad)
        cols = got.ravel()
        valid = cols >= 0
        s = np.full(len(cols), -np.inf, dtype=np.float32)
        s[valid] = _pair_dots(a, rows[valid], cols[valid])
        cand[start:stop] = got
        sims[start:stop] = s.reshape(got.shape)

    # Row ranges in parallel threads: scipy's sparse products and numpy's partitions release the GIL.
    parts = [(s0, min(n, s0 + _PART)) for s0 in range(0, n, _PART)]
    with ThreadPoolExecutor(max(1, min(WORKERS, len(parts)))) as pool:
        list(pool.map(work, parts))
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    nb = np.take_along_axis(cand, top, axis=1)
    w = np.take_along_axis(sims, top, axis=1).astype(np.float64)
    keep = w > 0
    kept = keep.sum(axis=1)
    out_rows = np.concatenate([np.repeat(np.arange(n), kept), np.arange(n)])
    out_cols = np.concatenate([nb[keep], np.arange(n)])
    out_w = np.concatenate([w[keep], np.ones(n)])
    order = np.lexsort((out_cols, out_rows))
    out_rows, out_cols, out_w = out_rows[order], out_cols[order], out_w[order]
    totals = np.bincount(out_rows, weights=out_w, minlength=n)
    data = (out_w / totals[out_rows]).astype(np.float32)
    indptr = np.concatenate([[0], np.cumsum(kept + 1)])
    return sp.csr_matrix((data, out_cols.astype(np.int32), indptr), shape=(n, n))


def _champion_lists(a: sp.csr_matrix, per_term: int, common_share: float) -> sp.csr_matrix:
    """terms × ads: each term's ``per_term`` heaviest entries (ties: lower row first); none for
    terms in more than ``common_share`` of the ads (ad-copy phrases: weak evidence of a topic)."""
    at = sp.csr_matrix(a.T)
    at.sum_duplicates()
    lengths = np.diff(at.indptr)
    limit = np.where(lengths > common_share * at.shape[1], 0, np.minimum(lengths, per_term))
    long_terms = np.flatnonzero(lengths > limit)  # terms that lose entries: sort those only
    keep = np.repeat(limit == lengths, lengths)
    for t in long_terms[limit[long_terms] > 0]:
        lo, hi = at.indptr[t], at.indptr[t + 1]
        # heaviest first; equal weights by row (the entries are in row order, the sort is stable)
        keep[lo + np.argsort(-at.data[lo:hi], kind="stable")[: limit[t]]] = True
    indptr = np.concatenate([[0], np.cumsum(limit)])
    return sp.csr_matrix((at.data[keep], at.indices[keep], indptr), shape=at.shape)


def _candidates(a: sp.csr_matrix, champions: sp.csr_matrix, per_ad: int, first: int, last: int) -> np.ndarray:
    """Rows ``first``..``last`` × ``per_ad``: the other ads scoring highest over the champion
    lists of each ad's terms (-1 where there are fewer)."""
    out = np.full((last - first, per_ad), -1, dtype=np.int64)
    start = first
    step = max(1, _CELLS // (per_ad * 64))
    while start < last:
        stop = min(last, start + step)
        p = sp.csr_matrix(a[start:stop] @ champions)
        lengths = np.diff(p.indptr)
        width = max(int(lengths.max()) if len(lengths) else 0, per_ad)
        if width * (stop - start) > _CELLS and stop - start > 1:  # too wide to pad: fewer rows
            step = max(1, (stop - start) // 2)
            continue
        r = np.repeat(np.arange(stop - start), lengths)
        c = np.arange(p.nnz) - np.repeat(p.indptr[:-1], lengths)
        vals = np.full((stop - start, width), -np.inf, dtype=np.float32)
        vals[r, c] = np.where(p.indices == r + start, -np.inf, p.data)  # not the ad itself
        top = np.argpartition(-vals, per_ad - 1, axis=1)[:, :per_ad]
        found = np.isfinite(np.take_along_axis(vals, top, axis=1))
        pos = (p.indptr[:-1, None] + top).clip(max=max(p.nnz - 1, 0))
        out[start - first:stop - first] = np.where(found, p.indices[pos] if p.nnz else -1, -1)
        start = stop
        step = max(1, _CELLS // width)
    return out


def _pair_dots(a: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``a[rows[i]] · a[cols[i]]`` for each i (``rows`` ascending), float32."""
    out = np.zeros(len(rows), dtype=np.float32)
    if not len(rows):
        return out
    v = a.shape[1]
    block = max(1, min(1024, _CELLS // max(1, v)))
    scratch = np.zeros((block, v), dtype=np.float32)  # a block of rows, dense
    first, last = int(rows[0]), int(rows[-1]) + 1
    starts = np.arange(first, last, block)
    bounds = np.searchsorted(rows, np.append(starts, last))
    for b, start in enumerate(starts.tolist()):
        s0, s1 = int(bounds[b]), int(bounds[b + 1])
        if s0 == s1:
            continue
        stop = min(last, start + block)
        blk = a[start:stop]
        local = np.repeat(np.arange(stop - start), np.diff(blk.indptr))
        scratch[local, blk.indices] = blk.data
        other = a[cols[s0:s1]]
        pair = np.repeat(np.arange(s1 - s0), np.diff(other.indptr))
        prod = scratch[rows[s0:s1][pair] - start, other.indices] * other.data
        out[s0:s1] = np.bincount(pair, weights=prod, minlength=s1 - s0)
        scratch[local, blk.indices] = 0.0
    return out


# Semantic neighbourhoods (matching.semantic): the same graph over the ads' sentence-encoder
# vectors, mixed with the lexical one. Ads about one topic in other words (楼盘 / 新房 / 住宅) are
# near in the encoder's space where TF-IDF sees nothing shared; measured on the evaluation tracks,
# an equal mix lifted P@5 and the short-page track over either graph alone (docs/relevance.md).
SEMANTIC_SHARE = 0.5


def knn_graph(sims: np.ndarray, ids: np.ndarray) -> sp.csr_matrix:
    """The graph (as :func:`neighbour_graph`'s) from each row's nearest ads: ``ids[i]`` (−1 for
    none; the row itself is skipped) with cosines ``sims[i]``; non-positive cosines are dropped."""
    n = len(ids)
    rows = np.repeat(np.arange(n), ids.shape[1]) if n else np.zeros(0, dtype=np.int64)
    cols, w = ids.ravel(), sims.ravel().astype(np.float64)
    keep = (cols >= 0) & (cols != rows) & (w > 0)
    out_rows = np.concatenate([rows[keep], np.arange(n)])
    out_cols = np.concatenate([cols[keep], np.arange(n)])
    out_w = np.concatenate([w[keep], np.ones(n)])
    m = sp.csr_matrix((out_w, (out_rows, out_cols)), shape=(n, n))
    m.sum_duplicates()
    totals = np.asarray(m.sum(axis=1)).ravel()
    return sp.csr_matrix(sp.diags(1.0 / np.maximum(totals, 1e-12)) @ m, dtype=np.float32)


def exact_knn(unit: np.ndarray, k: int = NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` + 1 most similar rows (itself included) by inner product, exactly, in
    blocks: (cosines, ids), ids −1 where there are fewer rows."""
    unit = np.asarray(unit, dtype=np.float32)
    n = len(unit)
    width = min(k + 1, n)
    sims = np.full((n, k + 1), -np.inf, dtype=np.float32)
    ids = np.full((n, k + 1), -1, dtype=np.int64)
    for start in range(0, n, _CHUNK):
        s = unit[start:start + _CHUNK] @ unit.T
        top = np.argpartition(-s, width - 1, axis=1)[:, :width] if width < n else np.argsort(-s, axis=1)[:, :width]
        sims[start:start + len(s), :width] = np.take_along_axis(s, top, axis=1)
        ids[start:start + len(s), :width] = top
    return sims, ids


def mix(lexical: sp.csr_matrix, semantic: sp.csr_matrix, share: float = SEMANTIC_SHARE) -> sp.csr_matrix:
    """``(1 − share)·lexical + share·semantic``: rows still sum to one."""
    return sp.csr_matrix((1.0 - share) * lexical + share * semantic, dtype=np.float32)
