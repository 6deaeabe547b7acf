"""One BidRequest end to end: the page understood, our ads ranked and priced, the response built.

Contract:
- never fetches anything: a page whose URL we know is ranked from its stored text (and the page
  cache, and its analysed meaning when a worker has encoded it); an unknown URL is offered to the
  background fetcher and the request is ranked on its title, keywords and categories;
- counts no impression (the billing notice does: :mod:`service.openrtb.routes`) and charges
  nothing: the click URL in ``adm`` is charged, at the click price decided here, when clicked;
- in test mode (``test: 1``) the click price sealed in the token is 0 and the notices count nothing;
- returns None for a no-bid, with the OpenRTB no-bid reason when one applies.
"""

from __future__ import annotations

import html
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

import opencc
from cachetools import LRUCache

from matching.analyze import make_page
from matching.auction import effective_bid
from matching.categories import Category, CategoryClassifier
from matching.ctr import NONE, PageCtr
from matching.openrtb_bidding import BidDecision, Offer, Terms, ad_domain, decide, predicted_ctr
from matching.openrtb_taxonomy import from_ours
from matching.pacing import may_enter
from matching.types import Ad, Page
from service.billing.clicks import ClickClaim
from service.context import AppContext
from service.openrtb.exchanges import Exchange, ExchangeStats
from service.openrtb.fetcher import PageFetcher
from service.openrtb.request import RequestView
from service.openrtb.wire import Bid, BidResponse, SeatBid
from service.serving.index_holder import Snapshot
from service.serving.page_cache import page_key
from service.serving.placement import CANDIDATES_PER_SLOT, MIN_CANDIDATES, relevant
from service.serving.url_pages import UrlPages

SEAT = "admatch"
AD_LABEL = "广告"
NBR_INVALID = 2
NBR_TIME = 15
MTYPE_BANNER = 1


@dataclass
class OpenRtb:
    """What the bidder holds beside the app context."""

    stats: ExchangeStats
    pages: UrlPages
    fetcher: PageFetcher | None
    rates: dict[str, Decimal]
    min_tmax_ms: int


@dataclass(frozen=True, slots=True)
class Outcome:
    response: BidResponse | None
    nbr: int | None = None


@lru_cache(maxsize=1)
def _classifier() -> CategoryClassifier:
    return CategoryClassifier()


@lru_cache(maxsize=1)
def _s2t() -> opencc.OpenCC:
    return opencc.OpenCC("s2t")


_AD_CATEGORIES: LRUCache[tuple[str, Ad], tuple[str, ...]] = LRUCache(maxsize=200_000)


def ad_categories(snap: Snapshot, ad: Ad) -> tuple[str, ...]:
    """The ad's IAB categories (our ids): its targets, and what its title, description and keywords
    are about by the page classifier; cached per index version and ad."""
    k = (snap.serving_id, ad)
    hit = _AD_CATEGORIES.get(k)
    if hit is None:
        terms = snap.matcher.analyze(make_page(title=ad.title, text=ad.description + "\n" + "，".join(ad.keywords)))
        found = [c.id for c, _ in _classifier().classify(terms.counts, top=3, min_score=0.2)]
        hit = _AD_CATEGORIES[k] = tuple(dict.fromkeys([*ad.target_categories, *found]))
    return hit


def _page(view: RequestView, known_text: tuple[str, str] | None) -> tuple[str | None, Callable[[], Page]]:
    p = view.page
    if known_text is not None:
        title, text = known_text
        return page_key(url=p.url, title=title, text=text, html=None), lambda: make_page(title=title, text=text)
    if not (p.title or p.keywords):
        return None, lambda: make_page()
    text = p.text
    return (page_key(url=p.url, title=p.title, text=text, html=None),
            lambda: make_page(title=p.title, text=text))


def _adm(title: str, description: str, click_url: str, size: tuple[int, int]) -> str:
    e = html.escape
    w, h = size
    return (f'<div style="box-sizing:border-box;width:{w}px;height:{h}px;overflow:hidden;padding:6px;'
            f'border:1px solid #ddd;font:14px/1.4 sans-serif;background:#fff">'
            f'<span style="font-size:12px;color:#666;border:1px solid #999;padding:0 2px">{e(AD_LABEL)}</span> '
            f'<a href="{e(click_url)}" target="_blank" rel="sponsored noopener">{e(title)}</a>'
            f'<div style="color:#333">{e(description)}</div></div>')


async def bid(c: AppContext, o: OpenRtb, exchange: Exchange, view: RequestView, *, click_base: str,
              notice_base: str, cattax: int | None, started: float, rng: random.Random | None = None) -> Outcome:
    """Decide and build the response to ``view`` for ``exchange`` (see the module contract)."""
    day = c.billing.clock.day(time.time())
    o.stats.count(exchange.id, day, requests=1)
    outcome = await _bid(c, o, exchange, view, click_base=click_base, notice_base=notice_base, cattax=cattax,
                         started=started, rng=rng)
    n = len(outcome.response.seatbid[0].bid) if outcome.response and outcome.response.seatbid else 0
    o.stats.count(exchange.id, day, bids=n, nobids=0 if n else 1)
    return outcome


async def _bid(c: AppContext, o: OpenRtb, exchange: Exchange, view: RequestView, *, click_base: str,
               notice_base: str, cattax: int | None, started: float, rng: random.Random | None) -> Outcome:
    if view.currency is None:
        return Outcome(None, NBR_INVALID)
    if view.tmax_ms is not None and view.tmax_ms < o.min_tmax_ms:
        return Outcome(None, NBR_TIME)
    snap = c.index.snapshot
    if not view.slots or snap is None:
        return Outcome(None)
    url = view.page.url
    known = await o.pages.get(url) if url else None
    if url and known is None and o.fetcher is not None:
        o.fetcher.offer(url)
    key, page = _page(view, (known.title, known.text) if known else None)
    if key is None:
        return Outcome(None)
    n = max(MIN_CANDIDATES, len(view.slots) * CANDIDATES_PER_SLOT)
    result = await relevant(snap, page, key, c.page_cache, c.blocked, n, c.understanding)
    if not result.candidates:
        return Outcome(None)
    now = time.time()
    states = await c.billing.budget_states((x.ad.campaign_id for x in result.candidates), now, None)
    elapsed = c.billing.clock.day_elapsed(now)
    draw = (rng or random).random
    page_ctr = _page_ctr(c, exchange, result.categories)
    offers = []
    for cand in result.candidates:
        cpc = effective_bid(cand.ad, cand.matched_keywords)
        state = states.get(cand.ad.campaign_id)
        # a campaign paying per conversion stays off exchanges: their impressions are bought per
        # click price here, and its clicks must stay free (service.conversions charges it)
        if state is None or state.cpa_event or not may_enter(state, cpc, elapsed, draw()):
            continue
        offers.append(Offer(ad=cand.ad, cpc_fen=cpc, ctr=predicted_ctr(cand, page_ctr),
                            categories=ad_categories(snap, cand.ad), domain=ad_domain(cand.ad.landing_url)))
    terms = Terms(cny_per_unit=o.rates[view.currency], revenue_share=Decimal(repr(exchange.revenue_share)),
                  first_price=view.first_price, shading=Decimal(repr(exchange.shading)),
                  min_cpc_fen=exchange.min_cpc_fen)
    decisions = decide(view.slots, offers, bcat=view.bcat, badv=view.badv, terms=terms)
    if view.tmax_ms is not None and (time.perf_counter() - started) * 1000 > view.tmax_ms:
        return Outcome(None, NBR_TIME)  # too late to be read: say so rather than bid
    if not decisions:
        return Outcome(None)
    bids = [_bid_of(c, exchange, view, d, now, click_base, notice_base, cattax) for d in decisions]
    return Outcome(BidResponse(id=view.id, bidid=uuid.uuid4().hex, cur=view.currency,
                               seatbid=[SeatBid(seat=SEAT, bid=bids)]))


def _page_ctr(c: AppContext, exchange: Exchange, categories: Sequence[tuple[Category, float]]) -> PageCtr | None:
    """The click model on this exchange's page (its top category), when the model ranks auctions."""
    model = c.ctr.stats.model if c.ctr is not None and c.ctr.rank else None
    if model is None:
        return None
    return model.page(f"x:{exchange.id}", categories[0][0].id if categories else NONE)


def _bid_of(c: AppContext, exchange: Exchange, view: RequestView, d: BidDecision, now: float,
            click_base: str, notice_base: str, cattax: int | None) -> Bid:
    ad = d.offer.ad
    imp = uuid.uuid4().hex
    pub = ("xt:" if view.test else "x:") + exchange.id
    claim = ClickClaim(imp=imp, ad=ad.id, cmp=ad.campaign_id, adv=ad.advertiser_id, pub=pub,
                       price=0 if view.test else d.click_price_fen, issued=now, url=ad.landing_url)
    token = c.signer.sign(claim)
    title, desc = ad.title, ad.description
    if view.wants_traditional:
        title, desc = _s2t().convert(title), _s2t().convert(desc)
    tax, cats = from_ours(d.offer.categories, cattax)
    return Bid(id=imp, impid=d.slot.id, price=float(d.price),
               adm=_adm(title, desc, click_base + token, d.size),
               nurl=f"{notice_base}win/{token}?price=${{AUCTION_PRICE}}&cur=${{AUCTION_CURRENCY}}",
               burl=f"{notice_base}bill/{token}?price=${{AUCTION_PRICE}}&cur=${{AUCTION_CURRENCY}}",
               adomain=[d.offer.domain] if d.offer.domain else [], crid=ad.id, cid=ad.campaign_id,
               cat=cats, cattax=tax, w=d.size[0], h=d.size[1], mtype=MTYPE_BANNER,
               langb="zh-Hant" if view.wants_traditional else "zh-Hans")
