"""One match request end to end: relevance ranking, budget and pacing, auction, impressions.

Contract: returns at most ``slots`` winners best first, each with its GSP price and a signed
click token; impressions are counted for exactly the ads returned. Relevance is the gate: only
candidates the matcher returned (at or above the floor, past category exclusions) enter; with a
click-through model (``ctr``) the auction's quality is their predicted CTR at the top slot,
otherwise their relevance score. A CPA campaign's ad enters at its CPA bid × that same quality ×
its predicted conversion rate and is priced per conversion (its clicks are free).
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
from matching.ctr import NONE, CellKey, PageCtr, band
from matching.pacing import may_enter
from matching.types import Ad, Candidate, Page
from service.analysis.understanding import PageUnderstanding
from service.billing.billing import Billing
from service.billing.clicks import ClickClaim, ClickSigner
from service.conversions.rates import ConversionRates
from service.ctr import cells as ctr_cells
from service.ctr.serving import CtrServing
from service.serving.blocked import BlockedCache
from service.serving.brand import BrandFilter
from service.serving.index_holder import Snapshot
from service.serving.page_cache import PageCache, PageResult
from service.store.records import Publisher

# How many relevant candidates enter budget checks and the auction, per slot asked for.
CANDIDATES_PER_SLOT = 3
MIN_CANDIDATES = 30  # more choice for the click-through model (20: +38 % clicks, 30: +47 %; docs/outcomes.md)
DEEPER_SLACK = 3  # rank past the cache only when over a third of the candidates asked for are paused
# Depth of the cached relevance ranking: enough for 10 slots before per-request filtering.
CACHE_DEPTH = 30


@dataclass(frozen=True, slots=True)
class Placement:
    candidate: Candidate
    win: Win
    impression_id: str
    token: str
    pctr: float | None = None  # predicted CTR at its slot (posterior mean); None without a model
    explored: bool = False  # the auction ranked by Thompson draws
    cpa_event: str | None = None  # paid per conversion of this event (win.price_fen per conversion)


def primary_keyword(c: Candidate) -> str:
    """The matched keyword an impression and its click are reported (and its CTR cell kept) under
    (``NONE``, '', when none)."""
    return c.matched_keywords[0] if c.matched_keywords else NONE


async def relevant(snap: Snapshot, page: Callable[[], Page], key: str | None, cache: PageCache,
                   blocked: BlockedCache, n: int, understanding: PageUnderstanding | None = None,
                   brand: BrandFilter | None = None) -> PageResult:
    """The ``n`` most relevant servable ads and the page's categories, from the page cache when
    the page was seen before. With ``understanding`` and a snapshot that ranks with vectors
    (:attr:`Snapshot.semantic`), a page is ranked with its sentence-encoder vector once one is known
    (:mod:`service.analysis.understanding`) and offered to the analysis queue while it is not;
    otherwise every page gets its first view (``analysed`` false). ``brand``: the publisher's
    brand controls (None: none)."""
    def allowed(ad: Ad) -> bool:
        return blocked.allows(ad.id, ad.campaign_id) and (brand is None or brand.allows(ad))

    version = snap.serving_id
    u = understanding if key and snap.semantic else None  # a vector the index cannot use is no analysis
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
    # many of the best are paused: look deeper (a few paused among them leave enough for the auction,
    # so a page with one paused ad in its cached ranking is not re-ranked on every request)
    if len(out) < n - n // DEEPER_SLACK and len(res.candidates) == CACHE_DEPTH:
        terms = terms or snap.matcher.analyze(page())
        out = snap.matcher.rank(terms, n, eligible=allowed, categories=res.categories)
    return PageResult(out[:n], res.categories, res.analysed)


async def place_ads(*, snap: Snapshot, page: Callable[[], Page], page_key: str | None, cache: PageCache,
                    slots: int, publisher: Publisher, user_key: str | None, blocked: BlockedCache,
                    billing: Billing, signer: ClickSigner, understanding: PageUnderstanding | None = None,
                    rng: random.Random | None = None, ctr: CtrServing | None = None,
                    brand: BrandFilter | None = None, conversion_rates: ConversionRates | None = None,
                    now: float | None = None) -> tuple[list[Placement], PageResult]:
    """The winners and the page's relevance result (candidates before budget and auction);
    ``brand``: the publisher's brand controls (service.serving.brand), None when there are none;
    ``conversion_rates``: what CPA ads' conversion rates are predicted from (None: the prior);
    ``now``: the time of the request (unix s; None: the clock's), its billing day and hour and its
    tokens' issue time (the demo's replayed day, service/demo/traffic.py, passes the past)."""
    n = max(MIN_CANDIDATES, slots * CANDIDATES_PER_SLOT)
    result = await relevant(snap, page, page_key, cache, blocked, n, understanding, brand)
    candidates = result.candidates
    if not candidates:
        return [], result
    now = time.time() if now is None else now
    states = await billing.budget_states((c.ad.campaign_id for c in candidates), now, user_key)
    elapsed = billing.clock.day_elapsed(now)
    draw = (rng or random).random
    category = result.categories[0][0].id if result.categories else NONE
    model = ctr.stats.model if ctr is not None else None
    page_ctr = model.page(publisher.id, category) if model is not None else None
    ranked: PageCtr | None = None  # None: quality is the relevance score
    explore_rng: random.Random | None = None  # set when this auction explores (Thompson draws)
    if ctr is not None and ctr.rank and model is not None and page_ctr is not None:
        ranked = page_ctr
        if model.explores(ctr.rng):
            explore_rng = ctr.rng
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
        # one quality for CPC and CPA bids alike: the predicted CTR at the top slot (slot effects
        # multiply every bid's eCPM alike), or the relevance score without the model
        if ranked is None:
            quality = c.score
        else:
            kw = primary_keyword(c)
            quality = (ranked.sample(c.ad, kw, c.score, explore_rng) if explore_rng is not None
                       else ranked.quality(c.ad, kw, c.score))
        bids.append(Bid(ad=c.ad, bid_fen=bid, quality=quality, cvr=cvr, per_conversion=bool(state.cpa_event)))
        by_ad[c.ad.id] = c
    wins = run_auction(bids, slots, publisher.floor_fen)
    user = billing.pseudonym(user_key) if user_key and wins else None  # tokens never hold the user key
    out = []
    cells: list[tuple[CellKey, float]] = []
    contexts: list[tuple[str, str]] = []  # first matched keyword and top page category, for reports
    for w in wins:
        imp = uuid.uuid4().hex
        ad = w.bid.ad
        c = by_ad[ad.id]
        kw = primary_keyword(c)
        cell = CellKey(ad.campaign_id, ad.id, category, kw, publisher.id, w.slot, band(c.score))
        cells.append((cell, c.score))
        contexts.append((kw, category))
        event = states[ad.campaign_id].cpa_event if w.bid.per_conversion else None
        claim = ClickClaim(imp=imp, ad=ad.id, cmp=ad.campaign_id, adv=ad.advertiser_id, pub=publisher.id,
                           price=w.price_fen, issued=now, url=ad.landing_url, user=user,
                           ctx=ctr_cells.context(category, kw, w.slot, cell.band), kw=kw, cat=category,
                           cpa=event or "")
        pctr = (page_ctr.quality(ad, kw, c.score) * model.position_factor(w.slot)
                if page_ctr is not None and model is not None else None)
        out.append(Placement(candidate=c, win=w, impression_id=imp, token=signer.sign(claim), pctr=pctr,
                             explored=explore_rng is not None, cpa_event=event))
    await billing.record_impressions(publisher.id, [(p.win.bid.ad.id, p.win.bid.ad.campaign_id) for p in out],
                                     now, user_key, cells, contexts=contexts)
    if ctr is not None and ctr.log.enabled and out:
        _log(ctr, out, result, publisher.id, now)
        await ctr.log.after_append()
    return out, result


def _log(ctr: CtrServing, placements: list[Placement], result: PageResult, publisher_id: str, now: float) -> None:
    cats = [[cat.id, round(score, 4)] for cat, score in result.categories]
    t = round(now, 3)
    for p in placements:
        c, w = p.candidate, p.win
        s = c.signals
        ctr.log.append({
            "ev": "imp", "t": t, "imp": p.impression_id, "pub": publisher_id, "cmp": c.ad.campaign_id,
            "ad": c.ad.id, "pos": w.slot, "cats": cats, "kw": list(c.matched_keywords), "s": round(c.score, 5),
            "band": band(c.score),
            "sig": {"keyword": round(s.keyword, 4), "tfidf": round(s.tfidf, 4), "dense": round(s.dense, 4),
                    "coarse": round(s.coarse, 4), "char": round(s.char, 4), "category": round(s.category, 4),
                    "semantic": round(s.semantic, 4), "neighbours": round(s.neighbours, 4),
                    "coverage": round(s.coverage, 4)},
            "bid": w.bid.bid_fen, "price": w.price_fen, "q": w.bid.quality,
            "pctr": None if p.pctr is None else round(p.pctr, 7), "x": int(p.explored)})
