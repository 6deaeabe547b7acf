"""``admatch ledger verify``: recompute spend from each campaign's ledger stream and compare it
with the spend counters and the hourly report counters.

The ledger holds every charge and the first invalid click of each reason per impression; the
hourly ``inv:<reason>`` counters count exactly those, and are checked. Repeats (``rep:<reason>``)
are counted without a ledger entry by design, so there is nothing to check them against."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from service.store import keys
from service.store.replies import stream_entries, text, text_set

BATCH = 10_000


@dataclass
class Verification:
    campaigns: int = 0
    entries: int = 0
    charged_fen: int = 0
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


async def verify(r: aioredis.Redis) -> Verification:
    out = Verification()
    for cid in sorted(text_set(await r.smembers(keys.BILLING_CAMPAIGNS))):
        out.campaigns += 1
        total = 0
        by_day: Counter[str] = Counter()
        by_hour: dict[str, Counter[str]] = defaultdict(Counter)
        start = "-"
        while True:
            entries = stream_entries(await r.xrange(keys.ledger(cid), min=start, max="+", count=BATCH))
            for _id, f in entries:
                out.entries += 1
                amount = int(f["amount"])
                hour_counts = by_hour[f["hour"]]
                if f["reason"] == "valid":
                    total += amount
                    by_day[f["day"]] += amount
                    hour_counts["click"] += 1
                    hour_counts["spend"] += amount
                else:
                    hour_counts["inv:" + f["reason"]] += 1
            if len(entries) < BATCH:
                break
            start = "(" + entries[-1][0]
        out.charged_fen += total
        counter = int(await r.get(keys.spend_total(cid)) or 0)
        if counter != total:
            out.mismatches.append(f"campaign {cid}: spend counter {counter} fen, ledger {total} fen")
        for day, amount in sorted(by_day.items()):
            value = await r.get(keys.spend_day(cid, day))
            if value is not None and int(value) != amount:  # day counters expire after a few days
                out.mismatches.append(f"campaign {cid} day {day}: counter {text(value)} fen, ledger {amount} fen")
        for hour, expected in sorted(by_hour.items()):
            stats = await r.hgetall(keys.stats(cid, hour))
            for k, v in expected.items():
                if int(stats.get(k, 0)) != v:
                    out.mismatches.append(f"campaign {cid} hour {hour} {k}: counter {stats.get(k, 0)}, ledger {v}")
    return out
