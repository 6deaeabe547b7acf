"""A publisher's brand controls as the serving path applies them (matching.brand holds the rules).

:func:`brand_filter` is what /v1/match, the ad tag and the OpenRTB bidder pass to
:func:`service.serving.placement.place_ads`; a bidder merges a request's ``bcat`` / ``badv`` into
the publisher's controls with :meth:`matching.brand.BrandControls.merged` first.
"""

from __future__ import annotations

from dataclasses import dataclass

from matching.brand import AdCategories, BrandControls
from matching.types import Ad
from service.store.records import Publisher


def publisher_controls(p: Publisher) -> BrandControls:
    return BrandControls.of(p.blocked_categories, p.blocked_advertisers, p.blocked_domains)


@dataclass(frozen=True, slots=True)
class BrandFilter:
    controls: BrandControls
    categories: AdCategories

    def allows(self, ad: Ad) -> bool:
        return self.controls.allows(ad, self.categories)


def brand_filter(controls: BrandControls, categories: AdCategories) -> BrandFilter | None:
    """The filter for ``controls``; None when they refuse nothing (the common case costs nothing)."""
    return None if controls.empty else BrandFilter(controls, categories)
