"""A catalog snapshot plus the ads changed since it was built, ranked as one catalog.

The snapshot's :class:`~matching.matcher.Matcher` keeps serving every ad it holds except the
*replaced* ones (changed, paused or deleted since the build); a second matcher over the changed
ads that are servable now (:func:`index.delta.delta_catalog`, in the snapshot's vector spaces)
scores those. Both score on the same scale, so the two rankings merge by score.

Contract: :meth:`LiveMatcher.rank` returns at most ``k`` candidates, best first, ties on ad id,
never an ad of ``replaced`` from the snapshot and never the same ad twice; with no changes it is
exactly the snapshot matcher's ranking.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from matching.categories import Category
from matching.matcher import Matcher
from matching.types import Ad, Candidate, Page, PageTerms


class LiveMatcher:
    """Ranks against a snapshot matcher and a matcher over the ads changed since (see module)."""

    def __init__(self, base: Matcher, delta: Matcher | None = None, replaced: frozenset[str] = frozenset()) -> None:
        self.base = base
        self.delta = delta if delta is not None and delta.catalog.ads else None
        self.replaced = replaced

    @property
    def config(self):  # noqa: ANN201 - the snapshot's MatchConfig
        return self.base.config

    def analyze(self, page: Page) -> PageTerms:
        return self.base.analyze(page)

    def categorize(self, terms: PageTerms) -> list[tuple[Category, float]]:
        return self.base.categorize(terms)

    def rank(self, terms: PageTerms, k: int, eligible: Callable[[Ad], bool] | None = None,
             categories: Sequence[tuple[Category, float]] | None = None,
             floor: float | None = None) -> list[Candidate]:
        if self.delta is None and not self.replaced:
            return self.base.rank(terms, k, eligible, categories, floor)
        if categories is None:
            categories = self.categorize(terms)
        replaced = self.replaced

        def current(ad: Ad) -> bool:
            return ad.id not in replaced and (eligible is None or eligible(ad))

        found = self.base.rank(terms, k, current, categories, floor)
        if self.delta is not None:
            found += self.delta.rank(terms, k, eligible, categories, floor)
        found.sort(key=lambda c: (-c.score, c.ad.id))
        return found[:k]
