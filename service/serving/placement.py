"""One match request end to end: relevance ranking, budget and pacing, auction, impressions.

Contract: returns at most ``slots`` winners best first, each with its GSP price and a signed
click token; impressions are counted for exactly the ads returned.
"""

from __future__ import annotations

import dataclasses
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from matching.auction import Bid, Win, effective_bid, run_auction
from matching.pacing import may_enter
from matching.types import Ad, Candidate, Page
from service.analysis.understanding import PageUnderstanding
from service.billing.billing import Billing
from service.billing.clicks import ClickClaim, ClickSigner
from service.serving.blocked import BlockedCache
from service.serving.brand import BrandFilter
from service.serving.index_holder import Snapshot
from service.serving.page_cache import PageCache, PageResult
from service.store.records import Publisher

# How many relevant candidates enter budget checks and the auction, per slot asked for.
CANDIDATES_PER_SLOT = 3
MIN_CANDIDATES = 10
# Depth of the cached relevance ranking: enough for 10 slots before per-request filtering.
CACHE_DEPTH = 30


@dataclass(frozen=True, slots=True)
class Placement:
    candidate: Candidate
    win: Win
    impression_id: str
    token: str


async def relevant(snap: Snapshot, page: Callable[[], Page], key: str | None, cache: PageCache,
                   blocked: BlockedCache, n: int, understanding: PageUnderstanding | None = None,
                   brand: BrandFilter | None = None) -> PageResult:
    """The ``n`` most relevant servable ads and the page's categories, from the page cache when
    the page was seen before. With ``understanding``, a page is ranked with its sentence-encoder
    vector once one is known (:mod:`service.analysis.understanding`) and offered to the analysis
    queue while it is not. ``brand``: the publisher's brand controls (None: none)."""
    def allowed(ad: Ad) -> bool:
        return blocked.allows(ad.id, ad.campaign_id) and (brand is None or brand.allows(ad))

    version = snap.serving_id
    u = understanding if key else None
    res = await cache.get(version, key, snap.ads_by_id) if key else None
    terms = None
    vector = None
    if u is not None and key is not None and (res is None or (not res.analysed and u.due(key))):
        vector = await u.stored(key)
    if res is None or vector is not None:
        pg = page()
        inline = False
        if u is not None and vector is None:
            vector = u.inline(pg)
            inline = vector is not None
        terms = snap.matcher.analyze(pg)
        if vector is not None:
            terms = dataclasses.replace(terms, vector=vector)
        cats = snap.matcher.categorize(terms)
        res = PageResult(snap.matcher.rank(terms, CACHE_DEPTH, categories=cats), cats, analysed=vector is not None)
        if key:
            await cache.put(version, key, res)
        if u is not None and key is not None:
            if inline:
                assert vector is not None
                await u.keep(key, vector)
            elif vector is None:
                u.offer(key, pg)
    out = [c for c in res.candidates if allowed(c.ad)]
    if len(out) < n and len(res.candidates) == CACHE_DEPTH:  # many of the best are paused: look deeper
        terms = terms or snap.matcher.analyze(page())
        out = snap.matcher.rank(terms, n, eligible=allowed, categories=res.categories)
    return PageResult(out[:n], res.categories, res.analysed)


async def place_ads(*, snap: Snapshot, page: Callable[[], Page], page_key: str | None, cache: PageCache,
                    slots: int, publisher: Publisher, user_key: str | None, blocked: BlockedCache,
                    billing: Billing, signer: ClickSigner, understanding: PageUnderstanding | None = None,
                    rng: random.Random | None = None,
                    brand: BrandFilter | None = None) -> tuple[list[Placement], PageResult]:
    """The winners and the page's relevance result (candidates before budget and auction);
    ``brand``: the publisher's brand controls (service.serving.brand), None when there are none."""
    n = max(MIN_CANDIDATES, slots * CANDIDATES_PER_SLOT)
    result = await relevant(snap, page, page_key, cache, blocked, n, understanding, brand)
    candidates = result.candidates
    if not candidates:
        return [], result
    now = time.time()
    states = await billing.budget_states((c.ad.campaign_id for c in candidates), now, user_key)
    elapsed = billing.clock.day_elapsed(now)
    draw = (rng or random).random
    bids: list[Bid] = []
    by_ad: dict[str, Candidate] = {}
    for c in candidates:
        bid = effective_bid(c.ad, c.matched_keywords)
        state = states.get(c.ad.campaign_id)
        if state is None or not may_enter(state, bid, elapsed, draw()):
            continue
        bids.append(Bid(ad=c.ad, bid_fen=bid, quality=c.score))
        by_ad[c.ad.id] = c
    wins = run_auction(bids, slots, publisher.floor_fen)
    user = billing.pseudonym(user_key) if user_key and wins else None  # tokens never hold the user key
    out = []
    for w in wins:
        imp = uuid.uuid4().hex
        ad = w.bid.ad
        claim = ClickClaim(imp=imp, ad=ad.id, cmp=ad.campaign_id, adv=ad.advertiser_id, pub=publisher.id,
                           price=w.price_fen, issued=now, url=ad.landing_url, user=user)
        out.append(Placement(candidate=by_ad[ad.id], win=w, impression_id=imp, token=signer.sign(claim)))
    await billing.record_impressions(publisher.id, [(p.win.bid.ad.id, p.win.bid.ad.campaign_id) for p in out],
                                     now, user_key)
    return out, result
