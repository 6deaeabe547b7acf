"""An advertiser's preview of a page: which of its own ads the page's relevance ranking would
admit, with their scores and signals — the same analysis, categories, filters (negative keywords,
match types, category targeting, sensitive pages, paused and held ads) and vector as serving uses,
but only the advertiser's ads, and below the relevance floor too, so a near miss shows as one.

Contract: :func:`preview` raises :class:`PayloadTooLarge` for a page over the configured size,
:class:`NotFound` for a URL-only page the service has not seen and :class:`NotReady` before an
index is loaded. It runs no auction, counts no impression, charges nothing and writes nothing
(no page cache entry, no analysis-queue offer, no page remembered by URL).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from matching.analyze import make_page
from matching.categories import Category
from matching.types import Ad, Candidate, Page
from service.context import AppContext
from service.errors import NotFound, NotReady
from service.serving.index_holder import Snapshot
from service.serving.page_cache import page_key
from service.serving.page_match import PageIn, check_size

# Ads of one advertiser shown at most, best first (the ranking looks only at this advertiser's ads).
PREVIEW_DEPTH = 200
# Below the floor, ads down to this score are shown as near misses; lower ones share nothing with the page.
NEAR_MISS = 1e-4


@dataclass(frozen=True, slots=True)
class Preview:
    candidates: list[Candidate]  # the advertiser's ads, best first, down to NEAR_MISS
    categories: list[tuple[Category, float]]
    analysed: bool  # ranked with the page's sentence-encoder vector
    floor: float  # candidates at or above it would enter the auction
    snapshot: Snapshot


async def preview(c: AppContext, advertiser_id: str, pg: PageIn) -> Preview:
    """The advertiser's ads on page ``pg``: with text or HTML, that content; with only a URL, the
    page the service read at that URL (see the module contract)."""
    check_size(c, pg)
    snap = c.index.snapshot
    if snap is None:
        raise NotReady("no index is loaded yet; build one with 'admatch index build'")
    if pg.text or pg.html:
        key = page_key(url=pg.url, title=pg.title, text=pg.text, html=pg.html)
        page: Page = make_page(title=pg.title, text=pg.text, html=pg.html)
    else:
        known = await c.url_pages.get(pg.url) if pg.url else None
        if known is None:
            raise NotFound(f"the service has not seen the page {pg.url!r}; paste its text (page.text) instead",
                           extra={"fields": [{"field": "page.url", "message": "unknown page"}]})
        key, page = known.key, known.page()
    matcher = snap.matcher
    terms = matcher.analyze(page)
    u = c.understanding if snap.semantic else None
    vector = None
    if u is not None:
        vector = await u.stored(key)
        if vector is None:
            vector = u.inline(page)
    if vector is not None:
        terms = dataclasses.replace(terms, vector=vector)
    categories = matcher.categorize(terms)

    def own(ad: Ad) -> bool:
        return ad.advertiser_id == advertiser_id and c.blocked.allows(ad.id, ad.campaign_id)

    found = matcher.rank(terms, PREVIEW_DEPTH, eligible=own, categories=categories, floor=NEAR_MISS)
    return Preview(found, categories, vector is not None, matcher.config.floor, snap)
