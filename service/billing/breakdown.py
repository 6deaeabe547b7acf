"""A campaign's figures broken down by ad, by matched keyword or by page category (the contextual
search-term report: where impressions, clicks, money and conversions went, so an advertiser can add
negative keywords or category exclusions where money leaks).

Read from the same hourly counters as :mod:`service.billing.reports`: ``a:<ad>:…``,
``k:<keyword>:…`` and ``g:<category>:…`` fields (imp, click, spend, conv, cval; ads also inv and
view, the ad tag's viewable impressions).
An impression and its click are counted under the ad's first matched keyword and the page's top
category; a conversion under its click's. Keyword and category counts begin with this release.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

import redis.asyncio as aioredis

from matching.categories import load_taxonomy
from service.billing.reports import Row, hours, period_of
from service.store import keys

Dimension = Literal["ad", "keyword", "category"]
Granularity = Literal["total", "day"]
PREFIX: dict[Dimension, str] = {"ad": "a:", "keyword": "k:", "category": "g:"}
METRICS = frozenset({"imp", "click", "spend", "conv", "cval", "inv", "view"})


def _split(field: str, prefix: str) -> tuple[str, str] | None:
    """``(key, metric)`` of a breakdown field, or None for any other field."""
    if not field.startswith(prefix):
        return None
    key, sep, metric = field[len(prefix):].rpartition(":")  # keywords may hold ':'; metrics never do
    return (key, metric) if sep and key and metric in METRICS else None


async def breakdown_rows(r: aioredis.Redis, cid: str, start: date, end: date, dimension: Dimension,
                         granularity: Granularity = "total") -> tuple[list[Row], Row]:
    """Rows by key (and by day with ``granularity="day"``): most spend first, then most
    impressions, then key; and the total over all keys."""
    prefix = PREFIX[dimension]
    hs = hours(start, end)
    async with r.pipeline(transaction=False) as p:
        for h in hs:
            p.hgetall(keys.stats(cid, h))
        raw = await p.execute()
    rows: dict[tuple[str, str], Row] = {}
    total = Row("total")
    for h, stats in zip(hs, raw, strict=True):
        period = period_of(h, "day") if granularity == "day" else "total"
        for f, v in stats.items():
            parsed = _split(f, prefix)
            if parsed is None:
                continue
            key, metric = parsed
            row = rows.get((period, key))
            if row is None:
                row = rows[(period, key)] = Row(period, key=key)
            n = int(v)
            values = {"imp": (n, 0, 0, 0, 0, 0), "click": (0, n, 0, 0, 0, 0), "spend": (0, 0, n, 0, 0, 0),
                      "conv": (0, 0, 0, n, 0, 0), "cval": (0, 0, 0, 0, n, 0),
                      "view": (0, 0, 0, 0, 0, n)}.get(metric)
            if values is None:  # an ad's invalid clicks, all reasons together
                row.invalid_clicks["all"] = row.invalid_clicks.get("all", 0) + n
                total.invalid_clicks["all"] = total.invalid_clicks.get("all", 0) + n
                continue
            imp, click, spend, conv, cval, view = values
            row.add(imp, click, spend, {}, viewable=view, conversions=conv, value=cval)
            total.add(imp, click, spend, {}, viewable=view, conversions=conv, value=cval)
    if dimension == "category":
        taxonomy = load_taxonomy()
        for row in rows.values():
            try:
                row.label = taxonomy[row.key or ""].name_zh
            except KeyError:
                row.label = ""
    ordered = sorted(rows.values(), key=lambda x: (x.period, -x.spend_fen, -x.impressions, x.key or ""))
    return ordered, total
