"""Domain types shared by the matcher, the indexer and the service (frozen, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class Ad:
    """One ad with the keyword set its advertiser bought. Money is integer fen."""

    id: str
    campaign_id: str
    advertiser_id: str
    title: str
    keywords: tuple[str, ...]
    bid_fen: int
    description: str = ""
    landing_url: str = ""
    keyword_bids: tuple[tuple[str, int], ...] = ()
    negative_keywords: tuple[str, ...] = ()
    match_types: tuple[tuple[str, str], ...] = ()  # keyword → "exact" | "phrase"; others are broad
    target_categories: tuple[str, ...] = ()  # IAB ids; shown only on pages in one of them
    exclude_categories: tuple[str, ...] = ()  # IAB ids; never shown on pages in one of them
    allow_sensitive: bool = False  # opted in to pages about sensitive topics


@dataclass(frozen=True, slots=True)
class Page:
    """A page after normalisation: title and body are normalised text."""

    title: str
    body: str
    original: str = ""  # title + body, NFKC and lower-cased but not converted: for exact keywords


@dataclass(frozen=True, slots=True)
class PageTerms:
    """A segmented page: weighted term counts (title and lead weigh more) and the term set, and
    its sentence-encoder vector once the page has been analysed (:mod:`matching.semantic`; None
    on the first view)."""

    page: Page
    counts: dict[str, float]
    vector: np.ndarray | None = field(default=None, compare=False)

    @property
    def terms(self) -> frozenset[str]:
        return frozenset(self.counts)


@dataclass(frozen=True, slots=True)
class Signals:
    """Per-candidate relevance evidence; each in [0, 1] except where noted."""

    keyword: float
    tfidf: float
    dense: float
    coarse: float = 0.0  # cosine in the leading LSA components
    char: float = 0.0  # character n-gram cosine
    category: float = 0.0  # cosine of the page's and the ad's IAB category scores
    semantic: float = 0.0  # sentence-encoder cosine of page and ad (analysed pages only)
    neighbours: float = 0.0  # weighted mean base score of the ad's catalog neighbours
    coverage: float = 1.0  # share of the page's weight on catalog words (same for every ad of a page)


@dataclass(frozen=True, slots=True)
class Candidate:
    """An ad judged relevant to a page, with the evidence for it."""

    ad: Ad
    score: float
    signals: Signals
    matched_keywords: tuple[str, ...] = field(default=())
    match_types: tuple[str, ...] = field(default=())  # per matched keyword: exact | phrase | broad
