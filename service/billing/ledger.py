"""``admatch ledger verify``: recompute spend from each campaign's ledger — its archived day files
(service/billing/archive.py, checksums checked) and what is still in its stream — and compare it
with the spend counters and the hourly report counters.

The ledger holds every charge (clicks, and CPA conversions: ``kind=conv``) and the first invalid
click of each reason per impression; the
hourly ``inv:<reason>`` counters count exactly those, and are checked. Repeats (``rep:<reason>``)
are counted without a ledger entry by design, so there is nothing to check them against. An
entry archived but not yet deleted from the stream (an interrupted archive run) counts once.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import redis.asyncio as aioredis

from service.billing import archive
from service.billing.billing import STATS_TTL_S
from service.store import keys
from service.store.replies import StreamEntry, stream_entries, text, text_set

BATCH = 10_000


@dataclass
class Verification:
    campaigns: int = 0
    entries: int = 0
    archived_entries: int = 0  # of ``entries``, those read from archive files
    archive_files: int = 0
    charged_fen: int = 0
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


@dataclass
class _Tally:
    """What one campaign's ledger entries add up to."""

    total: int = 0
    by_day: Counter[str] = field(default_factory=Counter)
    by_hour: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def add(self, entries: Iterable[StreamEntry]) -> int:
        n = 0
        for _id, f in entries:
            n += 1
            amount = int(f["amount"])
            hour_counts = self.by_hour[f["hour"]]
            if f.get("kind") == "conv":  # a CPA charge (service/conversions): spend, not a click
                self.total += amount
                self.by_day[f["day"]] += amount
                hour_counts["spend"] += amount
                hour_counts["cspend"] += amount
            elif f["reason"] == "valid":
                self.total += amount
                self.by_day[f["day"]] += amount
                hour_counts["click"] += 1
                hour_counts["spend"] += amount
            else:
                hour_counts["inv:" + f["reason"]] += 1
        return n


async def _stream(r: aioredis.Redis, cid: str, skip: set[str]) -> AsyncIterator[list[StreamEntry]]:
    """The campaign's stream in batches, without the ids in ``skip``."""
    start = "-"
    while True:
        entries = stream_entries(await r.xrange(keys.ledger(cid), min=start, max="+", count=BATCH))
        yield [e for e in entries if e[0] not in skip]
        if len(entries) < BATCH:
            return
        start = "(" + entries[-1][0]


async def _verify_campaign(r: aioredis.Redis, cid: str, archive_root: Path | None, out: Verification) -> None:
    tally = _Tally()
    overlap: set[str] = set()  # archived ids still in the stream
    if archive_root is not None:
        folder = archive.campaign_dir(archive_root, cid)
        try:
            days = archive.read_manifest(folder)
        except (archive.ArchiveError, ValueError, KeyError) as e:
            out.mismatches.append(f"campaign {cid}: archive manifest unreadable: {e}")
            days = {}
        first = stream_entries(await r.xrange(keys.ledger(cid), count=1))
        first_id = archive.id_key(first[0][0]) if first else None
        for day, info in sorted(days.items()):
            try:
                entries = archive.read_day(folder, info)
            except (archive.ArchiveError, ValueError, OSError) as e:
                out.mismatches.append(f"campaign {cid} archive day {day}: {e}")
                continue
            out.archive_files += 1
            if first_id is not None:
                overlap |= {i for i, _ in entries if archive.id_key(i) >= first_id}
            n = tally.add(entries)
            out.entries += n
            out.archived_entries += n
    async for batch in _stream(r, cid, overlap):
        out.entries += tally.add(batch)
    out.charged_fen += tally.total
    counter = int(await r.get(keys.spend_total(cid)) or 0)
    if counter != tally.total:
        out.mismatches.append(f"campaign {cid}: spend counter {counter} fen, ledger {tally.total} fen")
    for day, amount in sorted(tally.by_day.items()):
        value = await r.get(keys.spend_day(cid, day))
        if value is not None and int(value) != amount:  # day counters expire after a few days
            out.mismatches.append(f"campaign {cid} day {day}: counter {text(value)} fen, ledger {amount} fen")
    expired = datetime.fromtimestamp(time.time() - STATS_TTL_S - 86400, UTC).strftime("%Y%m%d%H")
    for hour, expected in sorted(tally.by_hour.items()):
        stats = await r.hgetall(keys.stats(cid, hour))
        if not stats and hour < expired:  # counters this old have expired; the archive outlives them
            continue
        for k, v in expected.items():
            if int(stats.get(k, 0)) != v:
                out.mismatches.append(f"campaign {cid} hour {hour} {k}: counter {stats.get(k, 0)}, ledger {v}")


async def verify(r: aioredis.Redis, archive_root: Path | None = None) -> Verification:
    """Every billed or archived campaign's ledger against its counters; with ``archive_root``, its
    archive files too (a file missing or not matching its sha256 is a mismatch)."""
    out = Verification()
    cids = set(text_set(await r.smembers(keys.BILLING_CAMPAIGNS)))
    if archive_root is not None:
        cids |= set(archive.archived_campaigns(archive_root))
    for cid in sorted(cids):
        out.campaigns += 1
        await _verify_campaign(r, cid, archive_root, out)
    return out
