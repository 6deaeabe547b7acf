"""A BidRequest as the bidder needs it: the page's signals, the slots, the blocks and the money.

Contract: :func:`read_request` never raises for a request that passed the wire model; what it
cannot use it leaves out (an imp without a banner has no sizes, a floor in a currency we do not
convert makes its imp unbiddable) and says why in :attr:`RequestView.skipped`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from matching.openrtb_bidding import Slot
from matching.openrtb_taxonomy import to_ours
from service.openrtb.wire import BidRequest, Content, Imp

MAX_KEYWORDS = 64


@dataclass(frozen=True, slots=True)
class PageSignals:
    """What the request says about the page: URL, title, keywords and its categories (our ids)."""

    url: str | None
    title: str
    keywords: tuple[str, ...]
    categories: frozenset[str]

    @property
    def text(self) -> str:
        return "，".join(self.keywords)


@dataclass(frozen=True, slots=True)
class RequestView:
    id: str
    page: PageSignals
    slots: tuple[Slot, ...]
    currency: str | None  # None: no accepted currency is one we convert
    bcat: frozenset[str]
    badv: tuple[str, ...]
    first_price: bool
    test: bool
    tmax_ms: int | None
    wants_traditional: bool  # wlang/wlangb allow Traditional Chinese but not Simplified
    gdpr: int | None
    skipped: tuple[str, ...] = field(default=())


def _keywords(*sources: tuple[str | None, list[str]]) -> tuple[str, ...]:
    out: list[str] = []
    for text, array in sources:
        out += array
        if text:
            out += text.replace("，", ",").replace("、", ",").split(",")
    return tuple(dict.fromkeys(k.strip() for k in out if k and k.strip()))[:MAX_KEYWORDS]


def _sizes(imp: Imp) -> tuple[tuple[int, int], ...]:
    b = imp.banner
    if b is None:
        return ()
    sizes = [(f.w, f.h) for f in b.format if f.w and f.h]
    if b.w and b.h:
        sizes.insert(0, (b.w, b.h))
    return tuple(dict.fromkeys(sizes))


def convert(amount: Decimal, source: str, target: str, rates: dict[str, Decimal]) -> Decimal | None:
    """``amount`` of ``source`` in ``target`` through CNY (``rates``: CNY per unit); None if unknown."""
    src, dst = rates.get(source.upper()), rates.get(target.upper())
    if src is None or dst is None:
        return None
    return amount * src / dst


def _currency(request: BidRequest, preferred: str, rates: dict[str, Decimal]) -> str | None:
    accepted = [c.upper() for c in request.cur] or [preferred]
    if preferred in accepted and preferred in rates:
        return preferred
    return next((c for c in accepted if c in rates), None)


def _traditional_only(request: BidRequest) -> bool:
    tags = [t.lower() for t in request.wlangb] + [t.lower() for t in request.wlang]
    if not tags:
        return False
    simplified = any(t in ("zh", "zh-hans", "zh-cn", "zh-sg") or t.startswith("zh-hans") for t in tags)
    traditional = any(t.startswith(("zh-hant", "zh-tw", "zh-hk", "zh-mo")) for t in tags)
    return traditional and not simplified


def read_request(request: BidRequest, *, preferred_currency: str, rates: dict[str, Decimal]) -> RequestView:
    site, app = request.site, request.app
    content: Content | None = (site.content if site else None) or (app.content if app else None)
    cats: set[str] = set()
    if site is not None:
        cats |= to_ours([*site.cat, *site.sectioncat, *site.pagecat], site.cattax)
    elif app is not None:
        cats |= to_ours(app.cat, app.cattax)
    if content is not None:
        cats |= to_ours(content.cat, content.cattax)
    title = (content.title if content and content.title else "") or ""
    keywords = _keywords((content.keywords, content.kwarray) if content else (None, []),
                         (site.keywords, site.kwarray) if site else (app.keywords if app else None, []))
    url = (site.page if site and site.page else None) or (content.url if content and content.url else None)
    page = PageSignals(url=url, title=title, keywords=keywords, categories=frozenset(cats))
    currency = _currency(request, preferred_currency, rates)
    skipped: list[str] = []
    slots: list[Slot] = []
    for imp in request.imp:
        sizes = _sizes(imp)
        if not sizes:
            skipped.append(f"imp {imp.id}: no banner size (we bid text/HTML banners only)")
            continue
        try:
            floor = convert(Decimal(repr(imp.bidfloor)), imp.bidfloorcur or "USD", currency or "CNY", rates)
        except InvalidOperation:
            floor = None
        if floor is None or currency is None:
            skipped.append(f"imp {imp.id}: floor currency {imp.bidfloorcur!r} or response currency not supported")
            continue
        slots.append(Slot(id=imp.id, sizes=sizes, floor=floor))
    seen: set[str] = set()  # an imp id given twice is bid on once
    unique = tuple(s for s in slots if not (s.id in seen or seen.add(s.id)))  # type: ignore[func-returns-value]
    regs = request.regs
    gdpr = regs.gdpr if regs and regs.gdpr is not None else (
        (regs.ext or {}).get("gdpr") if regs else None)
    return RequestView(
        id=request.id, page=page, slots=unique, currency=currency,
        bcat=to_ours(request.bcat, request.cattax), badv=tuple(request.badv),
        first_price=request.at == 1, test=request.test == 1, tmax_ms=request.tmax,
        wants_traditional=_traditional_only(request),
        gdpr=gdpr if isinstance(gdpr, int) else None, skipped=tuple(skipped))
