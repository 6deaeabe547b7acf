"""Conversions, pure: click ids, landing URLs, conversion reasons and the predicted conversion rate.

A click id names one impression's click and its campaign: ``<impression id>.<campaign id>``. The
impression id is 32 hex digits (random, so a click id cannot be guessed); the campaign id lets a
conversion reach the campaign's keys (one Redis slot) without a lookup. The landing page gets it as
``admatch_click=<click id>``; the advertiser keeps the latest one it saw for the reader (last click)
and sends it back with the conversion.

Predicted conversion rate (clicks → conversions of one event) is shrunk level by level like the
click-through: the prior, then the campaign's rate shrunk toward the prior, then the ad's shrunk
toward its campaign's (Beta-Binomial posterior means with a fixed strength in clicks)::

    cvr_campaign = (conv_c + m · prior) / (clicks_c + m)
    cvr_ad       = (conv_a + m · cvr_campaign) / (clicks_a + m)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

CLICK_PARAM = "admatch_click"
EVENT_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
_EVENT = re.compile(EVENT_PATTERN)
_IMP = re.compile(r"^[0-9a-f]{32}$")
MAX_CLICK_ID = 200


class ConversionReason(StrEnum):
    """What became of a conversion. Only ``counted`` ones are counted (and, for CPA, charged)."""

    COUNTED = "counted"
    UNKNOWN_CLICK = "unknown_click"  # malformed click id, no such click, or its record has expired
    INVALID_CLICK = "invalid_click"  # the click was not a valid one (a bot, too fast, rate limited …)
    OUTSIDE_WINDOW = "outside_window"  # later than the attribution window after the click
    OTHER_ADVERTISER = "other_advertiser"  # the click is another advertiser's
    DUPLICATE_ORDER = "duplicate_order"  # this order id was counted already


def click_id(imp: str, cmp: str) -> str:
    return f"{imp}.{cmp}"


def parse_click_id(value: str) -> tuple[str, str] | None:
    """``(impression id, campaign id)``, or None for anything :func:`click_id` cannot have made."""
    if len(value) > MAX_CLICK_ID:
        return None
    imp, sep, cmp = value.partition(".")
    if not sep or not cmp or not _IMP.match(imp) or any(c.isspace() or c in "{}" for c in cmp):
        return None
    return imp, cmp


def valid_event(event: str) -> bool:
    return bool(_EVENT.match(event))


def landing_with_click(url: str, cid: str) -> str:
    """``url`` with ``admatch_click=<cid>`` in its query (an earlier one replaced); the path and
    fragment are kept, and the other query parameters kept in order as they were written."""
    parts = urlsplit(url)
    kept = [p for p in parts.query.split("&") if p and p.split("=", 1)[0] != CLICK_PARAM] if parts.query else []
    query = "&".join([*kept, urlencode({CLICK_PARAM: cid})])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def click_param(url: str) -> str | None:
    """The click id in a landing URL (what a landing page reads), or None."""
    for k, v in parse_qsl(urlsplit(url).query):
        if k == CLICK_PARAM:
            return v
    return None


@dataclass(frozen=True, slots=True)
class CvrPrior:
    rate: float = 0.02  # conversions per valid click before any is seen
    strength: float = 100.0  # clicks' worth of weight each level's parent carries


def shrunk_rate(conversions: int, clicks: int, parent: float, strength: float) -> float:
    """Beta-Binomial posterior mean with prior mean ``parent`` and ``strength`` prior clicks."""
    return (conversions + strength * parent) / (clicks + strength)


def predicted_cvr(*, ad_conversions: int, ad_clicks: int, campaign_conversions: int, campaign_clicks: int,
                  prior: CvrPrior) -> float:
    """The ad's conversion rate: its own counts shrunk toward its campaign's, shrunk toward the prior."""
    campaign = shrunk_rate(campaign_conversions, campaign_clicks, prior.rate, prior.strength)
    return shrunk_rate(ad_conversions, ad_clicks, campaign, prior.strength)
