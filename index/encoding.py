"""Encoding a catalog's ad texts with the sentence encoder, in worker processes when large.

A cold build of a large catalog encodes every distinct ad text once (about 1.5 ms a text on one
core): from :data:`PARALLEL_MIN_TEXTS` texts the distinct texts are split among forked worker
processes, which inherit the loaded encoder (as :mod:`index.builder` segments ads). Warm builds
encode only texts missing from the vector cache (:mod:`index.vector_cache`).

Contract: :func:`encode_texts` returns one encoder row per text, in order, the same rows whether
or not it used worker processes.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
from collections.abc import Callable, Sequence

import numpy as np

from matching.encoder import SentenceEncoder

PARALLEL_MIN_TEXTS = 20_000
WORKERS = 2
_BATCH = 256
_forked: tuple[SentenceEncoder, Sequence[str]] | None = None


def encode_texts(texts: Sequence[str], encoder: SentenceEncoder,
                 progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Encoder rows of ``texts`` (equal texts encoded once); ``progress`` gets texts done."""
    distinct = list(dict.fromkeys(texts))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = min(WORKERS, cpus)
    if (len(distinct) < PARALLEL_MIN_TEXTS or workers < 2 or threading.active_count() > 1
            or "fork" not in mp.get_all_start_methods()):
        rows = _encode(encoder, distinct, progress)
    else:
        rows = _encode_forked(encoder, distinct, workers, progress)
    where = {t: i for i, t in enumerate(distinct)}
    return rows[[where[t] for t in texts]] if texts else rows


def _encode(encoder: SentenceEncoder, texts: Sequence[str], progress: Callable[[int], None] | None) -> np.ndarray:
    out = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    for start in range(0, len(texts), _BATCH):
        out[start:start + _BATCH] = encoder.encode(texts[start:start + _BATCH])
        if progress is not None:
            progress(min(_BATCH, len(texts) - start))
    return out


def _encode_forked(encoder: SentenceEncoder, texts: Sequence[str], workers: int,
                   progress: Callable[[int], None] | None) -> np.ndarray:
    global _forked
    encoder.encode(["预热"])  # load the model once, before forking: the workers inherit it
    step = 4 * _BATCH
    bounds = [(lo, min(len(texts), lo + step)) for lo in range(0, len(texts), step)]
    _forked = (encoder, texts)
    out = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    try:
        with mp.get_context("fork").Pool(workers) as pool:
            for (lo, hi), rows in zip(bounds, pool.imap(_encode_slice, bounds), strict=True):
                out[lo:hi] = rows
                if progress is not None:
                    progress(hi - lo)
    finally:
        _forked = None
    return out


def _encode_slice(bounds: tuple[int, int]) -> np.ndarray:
    assert _forked is not None
    encoder, texts = _forked
    return _encode(encoder, texts[bounds[0]:bounds[1]], None)
