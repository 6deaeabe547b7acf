"""Keyword match types as Chinese search advertisers know them.

Written in an ad's keyword list the way search engines take them: ``[学区房]`` is 精确 (exact:
the page must contain the keyword itself, as written), ``"学区房"`` (or “学区房”) is 短语 (phrase:
the keyword or a close variant — its Traditional/Simplified form, full- or half-width —
occurs), and a bare ``学区房`` is 广泛 (broad: semantic similarity is enough). An ad whose
keywords are all exact or phrase is shown only on pages where one of them matches.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from matching.tokenize import normalize_keyword


class MatchType(StrEnum):
    EXACT = "exact"
    PHRASE = "phrase"
    BROAD = "broad"


_QUOTES = (('"', '"'), ("\u201c", "\u201d"), ("'", "'"))


def parse_keyword(raw: str) -> tuple[str, MatchType]:
    """``[kw]`` → exact, ``"kw"`` → phrase, anything else → broad; returns the bare keyword."""
    kw = raw.strip()
    if len(kw) > 2 and kw[0] == "[" and kw[-1] == "]":
        return kw[1:-1].strip(), MatchType.EXACT
    for left, right in _QUOTES:
        if len(kw) > 2 and kw[0] == left and kw[-1] == right:
            return kw[1:-1].strip(), MatchType.PHRASE
    return kw, MatchType.BROAD


def render_keyword(kw: str, match_type: MatchType | str) -> str:
    """The inverse of :func:`parse_keyword`."""
    if match_type == MatchType.EXACT:
        return f"[{kw}]"
    if match_type == MatchType.PHRASE:
        return f'"{kw}"'
    return kw


def exact_form(text: str) -> str:
    """What an exact keyword is compared on: NFKC, lower case, no script conversion."""
    return unicodedata.normalize("NFKC", text).lower()


@dataclass(frozen=True, slots=True)
class KeywordRules:
    """One ad's declared match types, normalised for matching."""

    exact: frozenset[str]  # exact_form of exact keywords
    exact_norm: dict[str, str]  # normalised form → exact form, to report them among matches
    phrase: frozenset[str]  # normalised phrase keywords
    has_broad: bool

    def types_of(self, matched: Sequence[str]) -> tuple[str, ...]:
        return tuple(MatchType.EXACT.value if m in self.exact_norm else
                     MatchType.PHRASE.value if m in self.phrase else MatchType.BROAD.value for m in matched)

    def admits(self, found: frozenset[str] | set[str], original: str) -> bool:
        """Whether the page satisfies the ad's exact/phrase keywords (always, with a broad one)."""
        if self.has_broad:
            return True
        if self.phrase & found:
            return True
        return any(e in original for e in self.exact)


def keyword_rules(keywords: Sequence[str], match_types: Sequence[tuple[str, str]]) -> KeywordRules:
    declared = dict(match_types)
    exact = {k for k in keywords if declared.get(k) == MatchType.EXACT}
    phrase = {k for k in keywords if declared.get(k) == MatchType.PHRASE}
    return KeywordRules(
        exact=frozenset(exact_form(k) for k in exact),
        exact_norm={normalize_keyword(k): exact_form(k) for k in exact},
        phrase=frozenset(normalize_keyword(k) for k in phrase),
        has_broad=len(exact) + len(phrase) < len(keywords),
    )
