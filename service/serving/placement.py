"""One match request end to end: relevance ranking, budget and pacing, auction, impressions.

Contract: returns at most ``slots`` winners best first, each with its GSP price and a signed
click token; impressions are counted for exactly the ads returned. A CPA campaign's ad enters at
its CPA bid × :func:`predicted_ctr` × its predicted conversion rate and is priced per conversion.
"""

from __future__ import annotations

import dataclasses
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from matching.auction import Bid, Win, effective_bid, run_auction
from matching.conversions import CvrPrior
from matching.pacing import may_enter
from matching.types import Ad, Candidate, Page
from service.analysis.understanding import PageUnderstanding
from service.billing.billing import Billing
from service.billing.clicks import ClickClaim, ClickSigner
from service.conversions.rates import ConversionRates
from service.serving.blocked import BlockedCache
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
    cpa_event: str | None = None  # paid per conversion of this event (win.price_fen per conversion)


def predicted_ctr(c: Candidate) -> float:
    """The auction's quality term: the candidate's expected click-through. Today its relevance
    score; the learned click-through model replaces this one function."""
    return c.score


def primary_keyword(c: Candidate) -> str:
    """The matched keyword an impression and its click are reported under ('' none)."""
    return c.matched_keywords[0] if c.matched_keywords else ""


async def relevant(snap: Snapshot, page: Callable[[], Page], key: str | None, cache: PageCache,
                   blocked: BlockedCache, n: int, understanding: PageUnderstanding | None = None) -> PageResult:
    """The ``n`` most relevant servable ads and the page's categories, from the page cache when
    the page was seen before. With ``understanding``, a page is ranked with its sentence-encoder
    vector once one is known (:mod:`service.analysis.understanding`) and offered to the analysis
    queue while it is not."""
    def allowed(ad: Ad) -> bool:
        return blocked.allows(ad.id, ad.campaign_id)

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
                    rng: random.Random | None = None, conversion_rates: ConversionRates | None = None,
                    ) -> tuple[list[Placement], PageResult]:
    """The winners and the page's relevance result (candidates before budget and auction).
    ``conversion_rates``: what CPA ads' conversion rates are predicted from (None: the prior)."""
    n = max(MIN_CANDIDATES, slots * CANDIDATES_PER_SLOT)
    result = await relevant(snap, page, page_key, cache, blocked, n, understanding)
    candidates = result.candidates
    if not candidates:
        return [], result
    now = time.time()
    states = await billing.budget_states((c.ad.campaign_id for c in candidates), now, user_key)
    elapsed = billing.clock.day_elapsed(now)
    draw = (rng or random).random
    cpa_campaigns = [cid for cid, st in states.items() if st.cpa_event]
    if cpa_campaigns and conversion_rates is not None:
        await conversion_rates.load(cpa_campaigns)
    bids: list[Bid] = []
    by_ad: dict[str, Candidate] = {}
    for c in candidates:
        state = states.get(c.ad.campaign_id)
        if state is None:
            continue
        if state.cpa_event:
            bid = state.cpa_bid_fen
            cvr = (conversion_rates.predicted(c.ad.campaign_id, c.ad.id, state.cpa_event)
                   if conversion_rates is not None else CvrPrior().rate)
        else:
            bid, cvr = effective_bid(c.ad, c.matched_keywords), 1.0
        if not may_enter(state, bid, elapsed, draw()):
            continue
        bids.append(Bid(ad=c.ad, bid_fen=bid, quality=predicted_ctr(c), cvr=cvr,
                        per_conversion=bool(state.cpa_event)))
        by_ad[c.ad.id] = c
    wins = run_auction(bids, slots, publisher.floor_fen)
    user = billing.pseudonym(user_key) if user_key and wins else None  # tokens never hold the user key
    category = result.categories[0][0].id if result.categories else ""
    out = []
    contexts = []
    for w in wins:
        imp = uuid.uuid4().hex
        ad = w.bid.ad
        c = by_ad[ad.id]
        kw = primary_keyword(c)
        event = states[ad.campaign_id].cpa_event if w.bid.per_conversion else None
        claim = ClickClaim(imp=imp, ad=ad.id, cmp=ad.campaign_id, adv=ad.advertiser_id, pub=publisher.id,
                           price=w.price_fen, issued=now, url=ad.landing_url, user=user, kw=kw, cat=category,
                           cpa=event or "")
        out.append(Placement(candidate=c, win=w, impression_id=imp, token=signer.sign(claim), cpa_event=event))
        contexts.append((kw, category))
    await billing.record_impressions(publisher.id, [(p.win.bid.ad.id, p.win.bid.ad.campaign_id) for p in out],
                                     now, user_key, contexts=contexts)
    return out, result
