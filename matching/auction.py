"""Generalised second-price auction on eCPM = CPC bid × quality.

The quality is the predicted click-through at the top slot (:mod:`matching.ctr`; the relevance
score when the service runs without the model). Slot effects multiply every ad's click-through
alike, so ranking by the top slot's and pricing against it is the GSP of a separable model.

Contract: :func:`run_auction` ranks bidders by eCPM (ties: higher bid, then ad id), fills at most
``slots`` slots and prices each winner at the least whole-fen CPC that keeps its rank against
the bidder ranked right below it: ``floor(eCPM_next / quality_i) + 1``, never above its own bid
and never below the publisher's floor. A winner with nobody ranked below it pays the floor.
Bidders whose bid is under the floor take no part. All money is integer fen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from matching.types import Ad

MIN_QUALITY = 1e-12  # guards the division only: qualities are predicted CTRs, ≥ 1e-6 in practice


@dataclass(frozen=True, slots=True)
class Bid:
    ad: Ad
    bid_fen: int
    quality: float  # predicted click-through at the top slot (or relevance), > 0

    @property
    def ecpm(self) -> float:
        return self.bid_fen * self.quality


@dataclass(frozen=True, slots=True)
class Win:
    bid: Bid
    slot: int  # 0-based
    price_fen: int


def effective_bid(ad: Ad, matched_keywords: Sequence[str]) -> int:
    """The ad's CPC for this page: the highest per-keyword bid among matched keywords, else its bid."""
    per_keyword = dict(ad.keyword_bids)
    bids = [per_keyword[k] for k in matched_keywords if k in per_keyword]
    return max(bids) if bids else ad.bid_fen


def _rank_key(b: Bid) -> tuple[float, int, str]:
    return (-b.ecpm, -b.bid_fen, b.ad.id)


def run_auction(bids: Sequence[Bid], slots: int, floor_fen: int) -> list[Win]:
    """Winners best first, each with its GSP price in fen."""
    eligible = sorted((b for b in bids if b.bid_fen >= max(floor_fen, 1) and b.quality > 0), key=_rank_key)
    wins: list[Win] = []
    for i, b in enumerate(eligible[:slots]):
        if i + 1 < len(eligible):
            nxt = eligible[i + 1]
            # exact rationals: in floats bid×q/q can land just under bid and undercharge by a fen
            ratio = Fraction(nxt.bid_fen) * Fraction(nxt.quality) / Fraction(max(b.quality, MIN_QUALITY))
            price = math.floor(ratio) + 1
        else:
            price = floor_fen
        price = max(floor_fen, min(b.bid_fen, price))
        wins.append(Win(bid=b, slot=i, price_fen=int(price)))
    return wins
