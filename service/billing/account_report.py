"""An advertiser's campaigns side by side: each campaign's impressions, clicks, invalid clicks,
spend and conversions over a range, in one pipelined read (the account view of Google Ads' and
Baidu's campaign reports, and what the console's campaign list shows).

Read from the same hourly counters as :mod:`service.billing.reports` (``am:{c:C}:stats:<hour>``),
only their campaign-level fields (HMGET, so the ad, keyword and category fields of
:mod:`service.billing.breakdown` are not carried).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Literal

import redis.asyncio as aioredis

from service.billing.reports import Row, hours, invalid_counts, invalid_fields, period_of
from service.store import keys

Granularity = Literal["total", "day"]
_FIELDS = ["imp", "click", "spend", "view", "conv", "cval", *invalid_fields()]


async def campaign_rows(r: aioredis.Redis, campaigns: Sequence[tuple[str, str]], start: date, end: date,
                        granularity: Granularity = "total") -> tuple[list[Row], Row]:
    """Rows keyed by campaign id and named by its name, for ``campaigns`` = ``(id, name)`` pairs.
    By total every campaign gets a row, zeros included, in the order given; by day a row per
    campaign and day with any count, by day then in that order. And the total over all of them."""
    hs = hours(start, end)
    async with r.pipeline(transaction=False) as p:
        for cid, _ in campaigns:
            for h in hs:
                p.hmget(keys.stats(cid, h), _FIELDS)
        raw = await p.execute()
    rows: dict[tuple[str, int], Row] = {}
    total = Row("total")
    for i, (cid, name) in enumerate(campaigns):
        if granularity == "total":
            rows[("total", i)] = Row("total", key=cid, label=name)
        for j, h in enumerate(hs):
            vals = raw[i * len(hs) + j]
            if not any(vals):
                continue
            imp, clicks, spend, view, conv, cval, *inv_vals = (int(v or 0) for v in vals)
            inv = invalid_counts(inv_vals)
            period = "total" if granularity == "total" else period_of(h, "day")
            row = rows.get((period, i))
            if row is None:
                row = rows[(period, i)] = Row(period, key=cid, label=name)
            for target in (row, total):
                target.add(imp, clicks, spend, inv, viewable=view, conversions=conv, value=cval)
    return [rows[k] for k in sorted(rows)], total
