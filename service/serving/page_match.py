"""One page's ads for a publisher, as /v1/match and the ad tag both ask for them: the same size
limit, relevance ranking, brand controls, budgets, auction and impression counting.

Contract: :func:`match_page` raises :class:`PayloadTooLarge` for a page over the configured size
and :class:`NotReady` before an index is loaded; otherwise it counts the slots asked for (the
publisher report's fill rate) and returns the winners (impressions counted for exactly those) and
the page's relevance result. A page with a URL and text is
remembered by URL (:class:`~service.serving.url_pages.UrlPages`) for bid requests that name it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from matching.analyze import make_page
from matching.text import html_to_text
from service.context import AppContext
from service.errors import NotReady, PayloadTooLarge
from service.serving.brand import brand_filter, publisher_controls
from service.serving.index_holder import Snapshot
from service.serving.page_cache import PageResult, page_key
from service.serving.placement import Placement, place_ads
from service.serving.url_pages import MAX_TEXT_CHARS, MAX_TITLE_CHARS, KnownPage
from service.store.records import Publisher


@dataclass(frozen=True, slots=True)
class PageIn:
    title: str | None = None
    text: str | None = None
    html: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class PageMatch:
    placements: list[Placement]
    result: PageResult
    snapshot: Snapshot


async def match_page(c: AppContext, publisher: Publisher, pg: PageIn, slots: int,
                     user_key: str | None, now: float | None = None) -> PageMatch:
    """``now``: the request's time (None: the clock's; the demo's replayed day passes the past)."""
    check_size(c, pg)
    snap = c.index.snapshot
    if snap is None:
        raise NotReady("no index is loaded yet; build one with 'admatch index build'")
    key = page_key(url=pg.url, title=pg.title, text=pg.text, html=pg.html)
    now = time.time() if now is None else now  # the slots asked for and the impressions: one hour
    c.billing.count_requested_slots(publisher.id, slots, now)  # written with the impressions
    placements, result = await place_ads(
        snap=snap, page=lambda: make_page(title=pg.title, text=pg.text, html=pg.html), page_key=key,
        cache=c.page_cache, slots=slots, publisher=publisher, user_key=user_key,
        blocked=c.blocked, billing=c.billing, signer=c.signer, understanding=c.understanding, ctr=c.ctr,
        brand=brand_filter(publisher_controls(publisher), c.ad_categories), conversion_rates=c.conversion_rates,
        now=now)
    if pg.url and (pg.text or pg.html):
        await c.url_pages.remember(pg.url, key, lambda: _known(pg))
    return PageMatch(placements, result, snap)


def check_size(c: AppContext, pg: PageIn) -> None:
    """:class:`PayloadTooLarge` for a page over ``max_page_bytes`` of text and HTML together."""
    size = len((pg.text or "").encode()) + len((pg.html or "").encode())
    limit = c.settings.max_page_bytes
    if size > limit:
        raise PayloadTooLarge(f"page.text/page.html is {size} bytes, over the {limit}-byte limit; "
                              "send the article body only (no inline images or scripts)",
                              extra={"fields": [{"field": "page.text", "message": "too large"}]})


def _known(pg: PageIn) -> KnownPage | None:
    """The page as a request that names only its URL (OpenRTB) is ranked from."""
    assert pg.url is not None
    doc = html_to_text(pg.html) if pg.html else None
    text = "\n".join(t for t in (pg.text, doc.text if doc else None) if t)
    title = pg.title or (doc.title if doc else "")
    return KnownPage(url=pg.url, title=title[:MAX_TITLE_CHARS], text=text[:MAX_TEXT_CHARS])
