"""Click validity rules that need no storage: token age and user agent.

Reasons, in the order they are decided (storage-backed ones — duplicate, rate_limited,
budget_exhausted — are decided in Redis)::

    duplicate, expired, too_fast, bot, rate_limited, budget_exhausted
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache

from crawlerdetect import CrawlerDetect


class InvalidReason(StrEnum):
    DUPLICATE = "duplicate"
    EXPIRED = "expired"
    TOO_FAST = "too_fast"
    BOT = "bot"
    RATE_LIMITED = "rate_limited"
    BUDGET_EXHAUSTED = "budget_exhausted"


@lru_cache(maxsize=1)
def _detector() -> CrawlerDetect:
    return CrawlerDetect()


@lru_cache(maxsize=4096)
def is_bot(user_agent: str | None) -> bool:
    """Known crawlers, scripts and headless browsers; a missing user agent counts as a bot."""
    ua = (user_agent or "").strip()
    return not ua or bool(_detector().isCrawler(ua))


def timing_reason(issued_at: float, now: float, *, window_s: float, min_delay_s: float) -> InvalidReason | None:
    """expired when older than the window, too_fast when sooner than a person clicks."""
    age = now - issued_at
    if age > window_s:
        return InvalidReason.EXPIRED
    if age < min_delay_s:
        return InvalidReason.TOO_FAST
    return None
