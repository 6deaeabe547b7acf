"""Which advertiser keywords (and negative keywords) occur in a page.

An Aho-Corasick automaton (pyahocorasick) over every normalised keyword finds all occurrences in
one pass over the page text. A keyword of one or two characters counts only when segmentation
also produced it as a term, so 油 does not match 加油站 by substring alone.
"""

from __future__ import annotations

from collections.abc import Iterable

import ahocorasick

from matching.tokenize import normalize_keyword

SHORT_KEYWORD = 2


class KeywordFinder:
    """Finds which of a fixed set of normalised keywords occur in normalised text."""

    def __init__(self, keywords: Iterable[str]) -> None:
        self._automaton = ahocorasick.Automaton()
        n = 0
        for kw in {normalize_keyword(k) for k in keywords}:
            if kw:
                self._automaton.add_word(kw, kw)
                n += 1
        self._size = n
        if n:
            self._automaton.make_automaton()

    def __len__(self) -> int:
        return self._size

    def find(self, text: str, terms: frozenset[str] | set[str]) -> set[str]:
        """Keywords present in ``text``; short ones only if also among segmentation ``terms``."""
        if not self._size:
            return set()
        found: set[str] = set()
        for _end, kw in self._automaton.iter(text):
            if len(kw) > SHORT_KEYWORD or kw in terms:
                found.add(kw)
        return found
