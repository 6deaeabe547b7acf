"""What to bid on an OpenRTB request: one ad per impression, each priced as a CPM (pure).

Our advertisers pay per click; an exchange sells impressions. An impression is worth to us what
we expect to earn from it — the price its click will be charged × the predicted click-through —
and we pass the exchange its revenue share of that:

    value (CPM) = click price (fen) × predicted CTR × 1000 × revenue share

The click price is decided among our own ads for the slot as our generalised second price does
for ``/v1/match``: the least whole fen that keeps the winner ahead of our next-best ad, never
below the price at which the impression's value reaches the exchange's floor (the reserve) and
never above the advertiser's CPC bid. An ad whose bid cannot reach the floor takes no part.

Pricing toward the exchange follows its auction type (``at``):
- 2, second price (the default): bid the value. Truthful bidding is the dominant strategy when
  the winner pays the runner-up's price, and we never pay more than we expect to earn.
- 1, first price: the winner pays its own bid, so bidding the value would hand the whole surplus
  to the exchange. Without a bid landscape to learn from we shade linearly between the floor and
  the value: ``floor + shading × (value − floor)`` (``shading`` per exchange, 1.0 = no shading).

Contract of :func:`decide`: every bid is for an impression of the request, at most one per
impression and no ad twice; its price is ≥ the impression's floor (both in the response
currency, the price rounded down and the floor up to 1/10,000) and > 0, ≤ the value; no bid is for
an ad with a blocked category (:func:`matching.openrtb_taxonomy.blocks`) or advertiser domain.
All money is Decimal (fen for click prices: int), never float, once it leaves the CTR estimate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from urllib.parse import urlsplit

from matching.ctr import NONE, PageCtr
from matching.openrtb_taxonomy import blocks
from matching.types import Ad, Candidate

# Without a click model (ADMATCH_CTR_ENABLED off, or no data yet) the CTR estimate is the
# relevance score scaled: a perfectly relevant contextual text ad at 2 %, contextual display ads'
# usual range being 0.1-2 %. With one, it is the model's top-slot pCTR (matching/ctr.py).
CTR_PER_RELEVANCE = 0.02
MAX_CTR = 0.2
PRICE_STEP = Decimal("0.0001")
MILLE = Decimal(1000)


def predicted_ctr(candidate: Candidate, page_ctr: PageCtr | None = None) -> float:
    """The expected click-through of ``candidate`` on this page, in [0, MAX_CTR]: the learned
    model's posterior mean at the top slot when there is one (``page_ctr``), else 2 % × relevance."""
    if page_ctr is not None:
        kw = candidate.matched_keywords[0] if candidate.matched_keywords else NONE
        ctr = page_ctr.quality(candidate.ad, kw, candidate.score)
    else:
        ctr = CTR_PER_RELEVANCE * candidate.score
    return min(MAX_CTR, ctr) if math.isfinite(ctr) and ctr > 0 else 0.0


def ad_domain(url: str) -> str:
    """The advertiser domain of a landing URL (lower case, no ``www.``); '' when it has no host."""
    try:
        host = urlsplit(url if "//" in url else "//" + url).hostname or ""
    except ValueError:
        return ""
    host = host.rstrip(".").lower()
    return host.removeprefix("www.")


def domain_blocked(domain: str, badv: Iterable[str]) -> bool:
    """Whether ``domain`` is one of ``badv`` (domains or URLs) or a subdomain of one."""
    if not domain:
        return False
    for b in badv:
        d = ad_domain(b)
        if d and (domain == d or domain.endswith("." + d)):
            return True
    return False


@dataclass(frozen=True, slots=True)
class Offer:
    """An ad that may bid: its CPC bid for this page, predicted CTR, categories (our ids), domain."""

    ad: Ad
    cpc_fen: int
    ctr: float
    categories: tuple[str, ...]
    domain: str

    @property
    def ecpm(self) -> float:
        return self.cpc_fen * self.ctr


@dataclass(frozen=True, slots=True)
class Slot:
    """An impression: its id, accepted sizes (best first) and floor in the response currency."""

    id: str
    sizes: tuple[tuple[int, int], ...]
    floor: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class Terms:
    """How this exchange is paid: the response currency's value in CNY, its share of the expected
    revenue, its auction type, our shading for first-price auctions and the least click price."""

    cny_per_unit: Decimal  # CNY for one unit of the response currency (CNY: 1)
    revenue_share: Decimal  # in (0, 1]
    first_price: bool = False
    shading: Decimal = Decimal("0.8")
    min_cpc_fen: int = 1


@dataclass(frozen=True, slots=True)
class BidDecision:
    slot: Slot
    offer: Offer
    click_price_fen: int  # what the click will be charged
    value: Decimal  # CPM, response currency, rounded down
    price: Decimal  # the CPM bid, response currency
    size: tuple[int, int]


def cpm_value(click_fen: int, ctr: float, terms: Terms) -> Decimal:
    """Expected revenue share of an impression, CPM in the response currency (not rounded)."""
    fen = Decimal(click_fen) * Decimal(repr(ctr)) * MILLE * terms.revenue_share
    return fen / 100 / terms.cny_per_unit


def reserve_fen(floor: Decimal, ctr: float, terms: Terms) -> int | None:
    """Least click price whose impression value reaches ``floor``; None when no price can (ctr 0)."""
    if ctr <= 0 or terms.revenue_share <= 0:
        return None
    per_fen = cpm_value(1, ctr, terms)
    if per_fen <= 0:
        return None
    need = math.ceil(floor / per_fen) if floor > 0 else 0
    return max(terms.min_cpc_fen, need)


def blocked(offer: Offer, bcat: frozenset[str], badv: Sequence[str]) -> bool:
    return blocks(bcat, offer.categories) or domain_blocked(offer.domain, badv)


def _rank_key(o: Offer) -> tuple[float, int, str]:
    return (-o.ecpm, -o.cpc_fen, o.ad.id)


def effective_floor(slot: Slot) -> Decimal:
    """The slot's floor rounded up to the price grid, at least one step (a bid must be > 0)."""
    return max(PRICE_STEP, slot.floor.quantize(PRICE_STEP, rounding=ROUND_CEILING))


def _price(floor: Decimal, offer: Offer, click_fen: int, terms: Terms) -> tuple[Decimal, Decimal] | None:
    """(value, bid) for ``offer`` at ``click_fen``, or None when the value misses ``floor``."""
    value = cpm_value(click_fen, offer.ctr, terms).quantize(PRICE_STEP, rounding=ROUND_FLOOR)
    if value < floor:
        return None
    if not terms.first_price:
        return value, value
    shaded = (floor + terms.shading * (value - floor)).quantize(PRICE_STEP, rounding=ROUND_CEILING)
    return value, max(floor, min(value, shaded))


def decide(slots: Sequence[Slot], offers: Sequence[Offer], *, bcat: frozenset[str] = frozenset(),
           badv: Sequence[str] = (), terms: Terms) -> list[BidDecision]:
    """One bid per slot that some unblocked, unused offer can pay for (see the module contract).
    Slots are filled in the order given, each with the best offer left."""
    pool = sorted((o for o in offers if o.cpc_fen > 0 and o.ctr > 0 and not blocked(o, bcat, badv)),
                  key=_rank_key)
    used: set[str] = set()
    out: list[BidDecision] = []
    for slot in slots:
        if not slot.sizes:
            continue
        floor = effective_floor(slot)
        ranked: list[tuple[Offer, int]] = []
        for o in pool:
            if o.ad.id in used:
                continue
            r = reserve_fen(floor, o.ctr, terms)
            if r is not None and r <= o.cpc_fen:
                ranked.append((o, r))
        for i, (o, r) in enumerate(ranked):
            click = r
            if i + 1 < len(ranked):
                nxt = ranked[i + 1][0]
                click = max(click, math.floor(nxt.cpc_fen * nxt.ctr / o.ctr) + 1)
            click = min(o.cpc_fen, click)
            priced = _price(floor, o, click, terms)  # click ≥ reserve: reaches the floor on the grid
            if priced is None:
                continue
            value, price = priced
            out.append(BidDecision(slot=slot, offer=o, click_price_fen=click, value=value, price=price,
                                   size=slot.sizes[0]))
            used.add(o.ad.id)
            break
    return out
