"""``admatch ledger verify``: recompute spend from each campaign's ledger — its archived day files
(service/billing/archive.py, checksums checked) and what is still in its stream — and compare it
with the spend counters and the hourly report counters; and walk each campaign's hash chain
(service/billing/chain.py) across archive and stream in ledger order, naming the first entry where
it breaks, and compare its head with the stored head the reports publish.

The ledger holds every charge (clicks, and CPA conversions: ``kind=conv``) and the first invalid
click of each reason per impression; the
hourly ``inv:<reason>`` counters count exactly those, and are checked. Repeats (``rep:<reason>``)
are counted without a ledger entry by design, so there is nothing to check them against. An
entry archived but not yet deleted from the stream (an interrupted archive run) counts once.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter, defaultdict, deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import redis.asyncio as aioredis

from service.billing import archive
from service.billing.billing import STATS_TTL_S
from service.billing.chain import ChainWalk, parse_head
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
    chained_entries: int = 0  # of ``entries``, those carrying a hash chain
    unchained_entries: int = 0  # entries from before chaining (each campaign's unchained prefix)
    mismatches: list[str] = field(default_factory=list)
    # campaign → id of the first entry where its chain breaks (also described in ``mismatches``)
    broken: dict[str, str] = field(default_factory=dict)

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


class _InOrder:
    """Feeds a chain walk archive entries in stream-id order while day files are read one by one.

    Day files are taken in order of their first id; an entry is walked once no later file can hold
    an earlier one (a straggler filed under the day before, around midnight, is merged in place)."""

    def __init__(self, walk: ChainWalk) -> None:
        self.walk = walk
        self._heap: list[tuple[tuple[int, int], str, dict[str, str]]] = []

    def add_file(self, entries: list[StreamEntry], next_first: tuple[int, int] | None) -> None:
        for i, f in entries:
            heapq.heappush(self._heap, (archive.id_key(i), i, f))
        while self._heap and next_first is not None and self._heap[0][0] < next_first:
            _, i, f = heapq.heappop(self._heap)
            self.walk.add(i, f)

    def rest(self) -> deque[tuple[tuple[int, int], str, dict[str, str]]]:
        return deque(heapq.heappop(self._heap) for _ in range(len(self._heap)))


async def _verify_campaign(r: aioredis.Redis, cid: str, archive_root: Path | None, out: Verification) -> None:
    tally = _Tally()
    walk = ChainWalk(cid)
    order = _InOrder(walk)
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
        files = sorted(days.items(), key=lambda d: archive.id_key(str(d[1].get("first_id", "0-0"))))
        for n_file, (day, info) in enumerate(files):
            nxt = archive.id_key(str(files[n_file + 1][1].get("first_id", "0-0"))) if n_file + 1 < len(files) else None
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
            order.add_file(entries, nxt)
    pending = order.rest()  # archived entries not yet walked, merged with the stream below
    async for batch in _stream(r, cid, overlap):
        out.entries += tally.add(batch)
        for i, f in batch:
            key = archive.id_key(i)
            while pending and pending[0][0] < key:
                _, pi, pf = pending.popleft()
                walk.add(pi, pf)
            walk.add(i, f)
    for _, pi, pf in pending:
        walk.add(pi, pf)
    await _check_chain(r, cid, walk, out)
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


async def _check_chain(r: aioredis.Redis, cid: str, walk: ChainWalk, out: Verification) -> None:
    """The walk's verdict, and its end against the stored head (what reports publish)."""
    out.chained_entries += walk.chained
    out.unchained_entries += walk.unchained
    if walk.first_break is not None:
        entry_id, why = walk.first_break
        out.broken[cid] = entry_id
        more = f"; {walk.breaks - 1} more breaks after it" if walk.breaks > 1 else ""
        out.mismatches.append(f"campaign {cid}: ledger chain broken at entry {entry_id}: {why}{more}")
    seq, head, days = parse_head(await r.hgetall(keys.ledger_head(cid)))
    if seq > walk.seq:
        last = f"entry {walk.last_id} (seq {walk.seq})" if walk.last_id else "none"
        out.mismatches.append(f"campaign {cid}: ledger chain head is seq {seq} but the last entry found is "
                              f"{last}: the last {seq - walk.seq} entries are missing (deleted)")
        out.broken.setdefault(cid, walk.last_id or "")
    elif not seq and walk.chained:
        out.mismatches.append(f"campaign {cid}: ledger chain head is missing, the ledger has {walk.chained} "
                              "chained entries")
    elif seq and (seq != walk.seq or head != walk.head):
        out.mismatches.append(f"campaign {cid}: ledger chain head (seq {seq}, {head}) does not match the "
                              f"last entry (seq {walk.seq}, {walk.head})")
    for day, stored in sorted(days.items()):
        found = walk.days.get(day)
        if found != stored:
            seen = f"seq {found.seq}, {found.entries} entries" if found else "no entries"
            out.mismatches.append(f"campaign {cid} day {day}: published chain head seq {stored.seq} "
                                  f"({stored.entries} entries) but the ledger has {seen}")


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
