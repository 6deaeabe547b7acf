"""OpenRTB category codes ↔ our IAB Content Taxonomy 3.1 ids (``matching/data/iab_zh.tsv``).

OpenRTB names the taxonomy of every category list with a ``cattax`` (AdCOM's list): 1 = IAB
Content Category Taxonomy 1.0 (``IAB3-1``; the default wherever ``cattax`` is absent), 7 = Content
Taxonomy 3.0, 9 = Content Taxonomy 3.1. Our taxonomy is a subset of 3.1, whose ids are those of
3.0 for every node we hold, so 3.0 and 3.1 map by identity; 1.0 codes map through a table to the
3.1 node of the same topic (tier-1 codes to tier-1 nodes, a few sub-codes to the closer node).

Contract:
- :func:`to_ours` returns our ids for the codes it understands and keeps every other code as
  given (ids are opaque strings: an exchange may send 3.x nodes we do not hold), so an exact
  comparison with the same taxonomy's codes still works on them.
- :func:`blocks` says whether a set of blocked codes (already mapped) covers a category of ours:
  blocking a node blocks its whole subtree, and a few blocked 3.x nodes we do not hold block the
  node of ours that holds their topic (gambling → lotteries).
- :func:`from_ours` writes our ids in the taxonomy the exchange used, for ``bid.cat``.
"""

from __future__ import annotations

from collections.abc import Iterable

from matching.categories import Taxonomy, load_taxonomy

CATTAX_IAB_1_0 = 1
CATTAX_CT_3_0 = 7
CATTAX_CT_3_1 = 9
DEFAULT_CATTAX = CATTAX_IAB_1_0  # OpenRTB 2.6: every cattax defaults to 1

# IAB Content Category Taxonomy 1.0 → Content Taxonomy 3.1 (our nodes). Tier-1 codes first; a
# sub-code not listed falls back to its tier-1 code.
IAB1_TO_OURS: dict[str, tuple[str, ...]] = {
    "IAB1": ("JLBCU7",), "IAB1-2": ("46",), "IAB1-5": ("324",), "IAB1-6": ("338",), "IAB1-7": ("640",),
    "IAB2": ("1",), "IAB3": ("52",), "IAB4": ("123",), "IAB5": ("132",), "IAB6": ("186",),
    "IAB7": ("223", "286"), "IAB8": ("210",), "IAB8-5": ("211",), "IAB9": ("239",),
    "IAB9-30": ("680",), "IAB10": ("274",), "IAB11": ("383", "386"), "IAB13": ("391",),
    "IAB14": ("Z7rJBM",), "IAB15": ("464",), "IAB16": ("422",), "IAB17": ("483",),
    "IAB18": ("552",), "IAB19": ("596",), "IAB20": ("653",), "IAB21": ("441",), "IAB22": ("473",),
    "IAB23": ("453",), "IAB25": ("v9i3On",), "IAB25-3": ("Rm3SiT",), "IAB26": ("v9i3On",),
    "IAB7-39": ("Rm3SiT",), "IAB9-7": ("480",),
}
# Content Taxonomy 3.x nodes we do not hold whose topic one of ours carries: blocking them blocks
# ours too. 181 Casinos & Gambling, 524 Poker & Professional Gambling, ZJG29S Casino and Gambling
# Video Games → 480 Lotteries and Scratchcards (the only gambling-like node an advertiser buys here).
CT3_EQUIVALENT: dict[str, tuple[str, ...]] = {"181": ("480",), "524": ("480",), "ZJG29S": ("480",)}
_IAB1_FROM_OURS: dict[str, str] = {}
for _code, _ours in IAB1_TO_OURS.items():
    for _id in _ours:
        _IAB1_FROM_OURS.setdefault(_id, _code)


def _iab1(code: str) -> tuple[str, ...]:
    c = code.strip().upper()
    return IAB1_TO_OURS.get(c) or IAB1_TO_OURS.get(c.split("-")[0], ())


def to_ours(codes: Iterable[str], cattax: int | None) -> frozenset[str]:
    """Our ids for ``codes`` read in taxonomy ``cattax`` (None: the default, 1.0); codes we cannot
    map are kept as given."""
    tax = DEFAULT_CATTAX if cattax is None else cattax
    out: set[str] = set()
    for code in codes:
        if not isinstance(code, str) or not code:
            continue
        if tax == CATTAX_IAB_1_0:
            mapped = _iab1(code)
            out.update(mapped or (code,))
        elif tax in (CATTAX_CT_3_0, CATTAX_CT_3_1):
            out.add(code)
            out.update(CT3_EQUIVALENT.get(code, ()))
        else:
            out.add(code)
    return frozenset(out)


def ancestry(category_id: str, taxonomy: Taxonomy | None = None) -> tuple[str, ...]:
    """The node and its ancestors (just the id for a node we do not hold)."""
    tax = taxonomy or load_taxonomy()
    node = tax.get(category_id)
    if node is None:
        return (category_id,)
    out = [node.id]
    while node.parent is not None:
        node = tax[node.parent]
        out.append(node.id)
    return tuple(out)


def blocks(blocked: frozenset[str], categories: Iterable[str], taxonomy: Taxonomy | None = None) -> bool:
    """Whether any of ``categories`` (our ids) is in ``blocked`` or under a blocked node."""
    if not blocked:
        return False
    return any(not blocked.isdisjoint(ancestry(c, taxonomy)) for c in categories)


def from_ours(ids: Iterable[str], cattax: int | None) -> tuple[int, list[str]]:
    """``(cattax, codes)`` for ``bid.cat``: our ids in the exchange's taxonomy when it used 1.0,
    3.0 or 3.1, else in 3.1."""
    ids = list(dict.fromkeys(ids))
    tax = DEFAULT_CATTAX if cattax is None else cattax
    if tax == CATTAX_IAB_1_0:
        codes = []
        for i in ids:
            code = next((_IAB1_FROM_OURS[a] for a in ancestry(i) if a in _IAB1_FROM_OURS), None)
            if code is not None:
                codes.append(code)
        return CATTAX_IAB_1_0, list(dict.fromkeys(codes))
    if tax in (CATTAX_CT_3_0, CATTAX_CT_3_1):
        return tax, ids
    return CATTAX_CT_3_1, ids
