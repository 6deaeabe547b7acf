"""Campaign and publisher reports from the hourly counters the click script and impressions keep.

Figures: impressions, viewable impressions (the ad tag's beacon: at least half the ad in view for a
second) and viewability (viewable / impressions, in the impressions' hour), valid clicks, invalid
clicks by reason, CTR, spend (fen: clicks and CPA conversions), average CPC, conversions (counted
ones, in the hour they arrived), conversion rate (conversions ÷ clicks), conversion value (fen),
cost per conversion (spend ÷ conversions) and ROI (value ÷ spend), and, for publishers, earnings =
floor(spend × revenue share) per row (the total is floored once), the ad slots the publisher's
requests asked for (``requested_slots``, from ``am:{p:P}:stats:<hour>``) and the fill rate
(impressions ÷ requested slots).
Invalid clicks count every one: those in the ledger (``inv:<reason>``, the first of each reason
per impression) and the repeats counted only (``rep:<reason>``). Campaign reports also publish the
ledger's hash-chain head of each billing day (:func:`chain_heads`, service/billing/chain.py).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Literal

import redis.asyncio as aioredis

from matching.click_rules import InvalidReason
from service.billing.chain import DayHead
from service.store import keys
from service.store.replies import text_set

Granularity = Literal["hour", "day"]
MAX_DAYS = 92


@dataclass
class Row:
    period: str
    impressions: int = 0
    clicks: int = 0
    invalid_clicks: dict[str, int] = field(default_factory=dict)
    spend_fen: int = 0
    earnings_fen: int | None = None
    viewable: int = 0
    conversions: int = 0
    conversion_value_fen: int = 0
    key: str | None = None  # breakdown rows: the ad, keyword or page category (service.billing.breakdown)
    label: str | None = None  # a page category's name
    requested_slots: int | None = None  # publisher rows: the slots its requests asked for

    @property
    def fill_rate(self) -> float:
        return round(self.impressions / self.requested_slots, 6) if self.requested_slots else 0.0

    @property
    def viewability(self) -> float:
        return round(self.viewable / self.impressions, 6) if self.impressions else 0.0

    @property
    def ctr(self) -> float:
        return round(self.clicks / self.impressions, 6) if self.impressions else 0.0

    @property
    def avg_cpc_fen(self) -> float:
        return round(self.spend_fen / self.clicks, 2) if self.clicks else 0.0

    @property
    def conversion_rate(self) -> float:
        return round(self.conversions / self.clicks, 6) if self.clicks else 0.0

    @property
    def cost_per_conversion_fen(self) -> float:
        return round(self.spend_fen / self.conversions, 2) if self.conversions else 0.0

    @property
    def roi(self) -> float:
        return round(self.conversion_value_fen / self.spend_fen, 4) if self.spend_fen else 0.0

    def add(self, imp: int, clicks: int, spend: int, invalid: dict[str, int], *, viewable: int = 0,
            conversions: int = 0, value: int = 0) -> None:
        self.impressions += imp
        self.viewable += viewable
        self.clicks += clicks
        self.spend_fen += spend
        self.conversions += conversions
        self.conversion_value_fen += value
        for k, v in invalid.items():
            self.invalid_clicks[k] = self.invalid_clicks.get(k, 0) + v

    def as_dict(self) -> dict[str, object]:
        d: dict[str, object] = {} if self.key is None else {"key": self.key}
        if self.label is not None:
            d["name"] = self.label
        d |= {
            "period": self.period, "impressions": self.impressions, "viewable_impressions": self.viewable,
            "viewability": self.viewability, "clicks": self.clicks,
            "invalid_clicks": dict(sorted(self.invalid_clicks.items())),
            "invalid_total": sum(self.invalid_clicks.values()), "ctr": self.ctr,
            "spend_fen": self.spend_fen, "avg_cpc_fen": self.avg_cpc_fen,
            "conversions": self.conversions, "conversion_rate": self.conversion_rate,
            "conversion_value_fen": self.conversion_value_fen,
            "cost_per_conversion_fen": self.cost_per_conversion_fen, "roi": self.roi}
        if self.earnings_fen is not None:
            d["earnings_fen"] = self.earnings_fen
        if self.requested_slots is not None:
            d |= {"requested_slots": self.requested_slots, "fill_rate": self.fill_rate}
        return d


def hours(start: date, end: date) -> list[str]:
    """Every hour label of the days ``start``..``end`` (never a day past ``end``, even at date.max)."""
    days = (start + timedelta(days=i) for i in range((end - start).days + 1))
    return [f"{d:%Y%m%d}{h:02d}" for d in days for h in range(24)]


def period_of(hour: str, granularity: Granularity) -> str:
    t = datetime.strptime(hour, "%Y%m%d%H")
    return t.strftime("%Y-%m-%dT%H:00") if granularity == "hour" else t.strftime("%Y-%m-%d")


def _int(h: dict[str, str], k: str) -> int:
    return int(h.get(k, 0))


REASONS = [x.value for x in InvalidReason]


def invalid_fields(prefix: str = "") -> list[str]:
    """The hourly-stats fields of invalid clicks, every reason's ledgered (``inv:``) then repeated
    (``rep:``) count, under ``prefix`` (``p:<publisher>:`` for a publisher's share)."""
    return [f"{prefix}inv:{x}" for x in REASONS] + [f"{prefix}rep:{x}" for x in REASONS]


def invalid_counts(values: Sequence[int]) -> dict[str, int]:
    """Invalid clicks by reason from the values of :func:`invalid_fields`, reasons with none left out."""
    n = len(REASONS)
    return {reason: first + rep for reason, first, rep
            in zip(REASONS, values[:n], values[n:], strict=True) if first + rep}


def _invalid(stats: dict[str, str]) -> dict[str, int]:
    """Invalid clicks by reason in one hour's stats: in the ledger and repeats alike."""
    out: dict[str, int] = {}
    for k, v in stats.items():
        if k.startswith(("inv:", "rep:")):
            reason = k[4:]
            out[reason] = out.get(reason, 0) + int(v)
    return out


async def campaign_rows(r: aioredis.Redis, cid: str, start: date, end: date,
                        granularity: Granularity) -> tuple[list[Row], Row]:
    hs = hours(start, end)
    async with r.pipeline(transaction=False) as p:
        for h in hs:
            p.hgetall(keys.stats(cid, h))
        raw = await p.execute()
    rows: dict[str, Row] = {}
    total = Row("total")
    for h, stats in zip(hs, raw, strict=True):
        if not stats:
            continue
        inv = _invalid(stats)
        imp, clicks, spend = _int(stats, "imp"), _int(stats, "click"), _int(stats, "spend")
        view, conv, cval = _int(stats, "view"), _int(stats, "conv"), _int(stats, "cval")
        for row in (rows.setdefault(period_of(h, granularity), Row(period_of(h, granularity))), total):
            row.add(imp, clicks, spend, inv, viewable=view, conversions=conv, value=cval)
    return [rows[k] for k in sorted(rows)], total


async def chain_heads(r: aioredis.Redis, cid: str, start: date, end: date) -> dict[str, DayHead]:
    """Each billing day's ledger chain head (its last entry's hash and seq, the day's entry count),
    by ISO date, for the days from ``start`` to ``end`` that have chained entries."""
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    fields = [f"{p}:{d:%Y%m%d}" for d in days for p in ("h", "s", "n")]
    raw = await r.hmget(keys.ledger_head(cid), fields)
    out: dict[str, DayHead] = {}
    for i, d in enumerate(days):
        head, seq, n = raw[3 * i:3 * i + 3]
        if head is not None:
            out[d.isoformat()] = DayHead(int(seq or 0), str(head), int(n or 0))
    return out


async def publisher_rows(r: aioredis.Redis, pid: str, start: date, end: date, granularity: Granularity,
                         share: float) -> tuple[list[Row], Row]:
    cids = sorted(text_set(await r.smembers(keys.publisher_campaigns(pid))))
    hs = hours(start, end)
    prefix = f"p:{pid}:"
    fields = [prefix + "imp", prefix + "click", prefix + "spend", prefix + "view", *invalid_fields(prefix)]
    async with r.pipeline(transaction=False) as p:
        for cid in cids:
            for h in hs:
                p.hmget(keys.stats(cid, h), fields)
        for h in hs:
            p.hget(keys.publisher_stats(pid, h), "slots")
        raw = await p.execute()
    rows: dict[str, Row] = {}
    total = Row("total", requested_slots=0)

    def row_of(h: str) -> Row:
        period = period_of(h, granularity)
        return rows.setdefault(period, Row(period, requested_slots=0))
    i = 0
    for _cid in cids:
        for h in hs:
            vals = raw[i]
            i += 1
            if not any(vals):
                continue
            imp, clicks, spend, view, *inv_vals = (int(v or 0) for v in vals)
            inv = invalid_counts(inv_vals)
            row_of(h).add(imp, clicks, spend, inv, viewable=view)
            total.add(imp, clicks, spend, inv, viewable=view)
    for h, slots in zip(hs, raw[i:], strict=True):
        if slots:
            row = row_of(h)
            row.requested_slots = (row.requested_slots or 0) + int(slots)
            total.requested_slots = (total.requested_slots or 0) + int(slots)
    out = [rows[k] for k in sorted(rows)]
    # the share as the decimal it was written as: in floats 100 × 0.57 is 56.99… and floors to 56
    exact_share = Fraction(str(share))
    for row in [*out, total]:
        row.earnings_fen = math.floor(row.spend_fen * exact_share)
    return out, total


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A cell as written: text that a spreadsheet would read as a formula (starting with = + - @,
    tab or CR) gets a leading apostrophe (OWASP's CSV-injection advice); numbers are left as numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(rows: Sequence[Row], total: Row) -> str:
    reasons = REASONS
    buf = io.StringIO()
    w = csv.writer(buf)
    with_earnings = total.earnings_fen is not None
    with_fill = total.requested_slots is not None
    with_key = any(row.key is not None for row in rows)
    with_label = any(row.label is not None for row in rows)
    w.writerow((["key"] if with_key else []) + (["name"] if with_label else [])
               + ["period", "impressions", "clicks", *[f"invalid_{x}" for x in reasons], "ctr", "spend_fen",
                  "avg_cpc_fen", "viewable_impressions", "viewability", "conversions", "conversion_rate",
                  "conversion_value_fen", "cost_per_conversion_fen", "roi"] + (["earnings_fen"] if with_earnings else [])
               + (["requested_slots", "fill_rate"] if with_fill else []))
    for row in [*rows, total]:
        cells = (([row.key or ""] if with_key else []) + ([row.label or ""] if with_label else [])
                 + [row.period, row.impressions, row.clicks, *[row.invalid_clicks.get(x, 0) for x in reasons],
                    row.ctr, row.spend_fen, row.avg_cpc_fen, row.viewable, row.viewability, row.conversions,
                    row.conversion_rate, row.conversion_value_fen, row.cost_per_conversion_fen, row.roi]
                 + ([row.earnings_fen] if with_earnings else [])
                 + ([row.requested_slots, row.fill_rate] if with_fill else []))
        w.writerow([csv_cell(c) for c in cells])
    return buf.getvalue()
