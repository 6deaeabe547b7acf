"""Background IDF: how informative a word is in general Chinese text, not just in our catalog.

The catalog's own IDF says how rare a term is *among ads*: 企业 (company) appears in a handful of
tech ads, so the catalog calls it specific although every business article uses it. jieba ships
a general IDF table (``jieba/analyse/idf.txt``, 270k words computed on a large general corpus);
weighting the page side by it keeps such words from dominating a page's vector. Words missing
from the table get the table's median, jieba's own convention.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

import numpy as np

_TABLE = ("jieba", "analyse", "idf.txt")


def background_idf(terms: Sequence[str]) -> np.ndarray:
    """General-corpus IDF of each term (float64, aligned with ``terms``); unknown → table median."""
    wanted = {t: i for i, t in enumerate(terms)}
    out = np.full(len(terms), np.nan)
    values: list[float] = []
    path = resources.files(_TABLE[0]).joinpath(*_TABLE[1:])
    with path.open("r", encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) != 2:
                continue
            v = float(parts[1])
            values.append(v)
            i = wanted.get(parts[0])
            if i is not None:
                out[i] = v
    median = float(np.median(values)) if values else 1.0
    out[np.isnan(out)] = median
    return out
