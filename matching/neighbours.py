"""The catalog's neighbourhood graph: which ads are about the same thing as which.

Advertisers in one market buy overlapping keywords, so an ad's nearest ads by TF-IDF cosine are
mostly about its topic. Each ad keeps its ``k`` nearest other ads, weighted by similarity, and
itself with weight one (its similarity to itself); the row is normalised to sum to one. At match
time an ad's *neighbour support* is the weighted mean of its neighbourhood's scores for the page,
so an ad with only weak neighbours (a small catalog of unrelated ads) keeps mostly its own score
instead of taking a stranger's; blending it in lets a page that matched three keywords of one
ad lift the ads around it that share that ad's topic but happen to miss those exact words
(pseudo-relevance over the catalog: no page is used to build it).

Contract: :func:`neighbour_graph` is deterministic for the same rows and returns a CSR
matrix ads × ads with non-negative rows summing to one, the diagonal included.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

NEIGHBOURS = 10
_CHUNK = 128  # rows of the ad × ad similarity held densely at once during the build


def neighbour_graph(ad_rows: sp.csr_matrix, k: int = NEIGHBOURS) -> sp.csr_matrix:
    """Row-normalised graph of each ad's ``k`` nearest other ads plus itself (weight one), over
    L2-normalised ad rows."""
    n = ad_rows.shape[0]
    k = max(0, min(k, n - 1))
    if k == 0:
        return sp.identity(n, dtype=np.float32, format="csr")
    a = sp.csr_matrix(ad_rows, dtype=np.float32)
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
