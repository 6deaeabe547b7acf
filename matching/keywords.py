"""Which advertiser keywords (and negative keywords) occur in a page.

An Aho-Corasick automaton (ahocorasick-rs, the Rust aho-corasick crate) over the normalised
keywords finds all occurrences, overlapping ones included, in one pass over the page text. A
keyword of one or two characters counts only when segmentation also produced it as a term, so 油
does not match 加油站 by substring alone; as every term is a substring of the text, those are
simply the short keywords among the terms, and the automaton holds the longer ones only (a page's
text holds thousands of one- and two-character matches).
"""

from __future__ import annotations

from collections.abc import Iterable

import ahocorasick_rs

from matching.tokenize import normalize_keyword

SHORT_KEYWORD = 2


class KeywordFinder:
    """Finds which of a fixed set of normalised keywords occur in normalised text."""

    def __init__(self, keywords: Iterable[str]) -> None:
        distinct = {kw for kw in (normalize_keyword(k) for k in keywords) if kw}
        self._short = frozenset(kw for kw in distinct if len(kw) <= SHORT_KEYWORD)
        self._size = len(distinct)
        longer = sorted(distinct - self._short)
        self._automaton = ahocorasick_rs.AhoCorasick(longer) if longer else None

    def __len__(self) -> int:
        return self._size

    def find(self, text: str, terms: frozenset[str] | set[str]) -> set[str]:
        """Keywords present in ``text``; short ones only if also among ``terms``, the terms
        segmentation found in ``text``."""
        found = set(self._short.intersection(terms))
        if self._automaton is not None:
            found.update(self._automaton.find_matches_as_strings(text, overlapping=True))
        return found
