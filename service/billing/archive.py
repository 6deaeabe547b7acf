"""Ledger retention: ``admatch ledger archive`` moves ledger stream entries older than N days into
one compressed, checksummed file per campaign and billing day, and deletes from the stream only
the entries it archived and read back intact.

Layout under the archive root (``ADMATCH_LEDGER_ARCHIVE_DIR``, default ``DATA_DIR/ledger-archive``)::

    <campaign>/MANIFEST.json               {"format": 1, "campaign": C, "days": {"YYYYMMDD": {"file",
                                            "sha256", "entries", "first_id", "last_id", "charged_fen",
                                            "chain": {"first_seq", "last_seq", "head"} (when chained)}}}
    <campaign>/<day>-<sha256[:16]>.jsonl.gz  gzip'd JSON Lines, one entry a line: {"id": stream id,
                                            "ad", "amount", "day", "hour", "imp", "pub", "reason", "ts",
                                            "seq", "prev", "hash"} (keys sorted; the chain fields are
                                            absent on entries from before chaining)

The files keep every field of an entry, its hash chain included (service/billing/chain.py), so
``admatch ledger verify`` walks the chain from the archive into the stream without a gap.

Contract: a day file is immutable and named by its content; the manifest is replaced atomically
(written, fsynced, renamed) after the files it lists are on disk, so an interrupted run leaves the
previous or the new file of a day listed, never a partial one. Entries are deleted (XDEL of
exactly their ids) only after the manifest is in place and each file is read back and matches its
sha256. A later run merges: a day's new file holds the old file's entries and the stream's,
deduplicated by stream id, so an entry archived but not yet deleted is never archived twice.
Entries are selected by stream id (the Redis time they were appended) before the start of the
billing day N days ago, and filed under their own ``day`` field.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import json
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from service.store import keys
from service.store.replies import StreamEntry, stream_entries, text_set

FORMAT = 1
MANIFEST = "MANIFEST.json"
BATCH = 10_000
XDEL_BATCH = 1_000


class ArchiveError(Exception):
    """An archive file is missing, unreadable or does not match its checksum."""


@dataclass
class ArchiveReport:
    campaigns: int = 0
    archived: int = 0  # stream entries written to files in this run
    trimmed: int = 0  # stream entries deleted after their file was verified
    files: list[str] = field(default_factory=list)  # day files written in this run
    bytes_written: int = 0
    problems: list[str] = field(default_factory=list)


def campaign_dir(root: Path, cid: str) -> Path:
    """A campaign's folder: its id with anything but letters, digits, - and _ percent-escaped."""
    return root / quote(cid, safe="-_").replace(".", "%2E").replace("~", "%7E")


def archived_campaigns(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(unquote(p.name) for p in root.iterdir() if (p / MANIFEST).is_file())


def read_manifest(folder: Path) -> dict[str, dict[str, object]]:
    """day → its file entry; {} when the campaign has no archive."""
    path = folder / MANIFEST
    if not path.exists():
        return {}
    data = json.loads(path.read_text("utf-8"))
    if data.get("format") != FORMAT:
        raise ArchiveError(f"{path}: format {data.get('format')!r}, expected {FORMAT}")
    return dict(data["days"])


def read_day(folder: Path, info: dict[str, object]) -> list[StreamEntry]:
    """A day file's entries, after its sha256 is checked against the manifest."""
    path = folder / str(info["file"])
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise ArchiveError(f"{path}: cannot be read ({e.strerror})") from e
    digest = hashlib.sha256(blob).hexdigest()
    if digest != info["sha256"]:
        raise ArchiveError(f"{path}: sha256 {digest} does not match the manifest's {info['sha256']}")
    out: list[StreamEntry] = []
    for line in gzip.decompress(blob).decode("utf-8").splitlines():
        row = json.loads(line)
        out.append((row.pop("id"), row))
    return out


def id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def cutoff_ms(tz: str, older_than_days: int, now: float) -> int:
    """Start of the billing day ``older_than_days`` before today's, in unix milliseconds."""
    zone = ZoneInfo(tz)
    today = datetime.fromtimestamp(now, zone).date()
    start = datetime.combine(today - timedelta(days=older_than_days), datetime.min.time(), zone)
    return int(start.timestamp() * 1000)


def _encode(entries: list[StreamEntry]) -> bytes:
    lines = "".join(json.dumps({"id": i, **f}, ensure_ascii=False, sort_keys=True) + "\n" for i, f in entries)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:  # mtime 0: same entries, same bytes
        gz.write(lines.encode("utf-8"))
    return buf.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ArchiveError(f"another 'admatch ledger archive' holds {root / '.lock'}; let it finish") from None
        yield


async def _old_entries(r: aioredis.Redis, cid: str, before_ms: int) -> list[StreamEntry]:
    out: list[StreamEntry] = []
    start, end = "-", f"{before_ms - 1}-18446744073709551615"
    while True:
        batch = stream_entries(await r.xrange(keys.ledger(cid), min=start, max=end, count=BATCH))
        out += batch
        if len(batch) < BATCH:
            return out
        start = "(" + batch[-1][0]


def _day_of(entry: StreamEntry, tz: ZoneInfo) -> str:
    day = entry[1].get("day")
    return day if day else datetime.fromtimestamp(id_key(entry[0])[0] / 1000, tz).strftime("%Y%m%d")


async def archive_campaign(r: aioredis.Redis, root: Path, cid: str, before_ms: int, tz: str,
                           report: ArchiveReport, *, trim: bool = True) -> None:
    """Archive one campaign's entries with ids before ``before_ms``; then, with ``trim``, delete
    those its verified files hold."""
    entries = await _old_entries(r, cid, before_ms)
    if not entries:
        return
    folder = campaign_dir(root, cid)
    folder.mkdir(parents=True, exist_ok=True)
    days = read_manifest(folder)
    by_day: defaultdict[str, list[StreamEntry]] = defaultdict(list)
    zone = ZoneInfo(tz)
    for e in entries:
        by_day[_day_of(e, zone)].append(e)
    replaced: list[str] = []
    for day, new in sorted(by_day.items()):
        old = read_day(folder, days[day]) if day in days else []  # a bad old file stops the campaign
        known = {i for i, _ in old}
        merged = sorted(old + [e for e in new if e[0] not in known], key=lambda e: id_key(e[0]))
        if len(merged) == len(old):
            continue  # all archived before (a run interrupted before its trim)
        blob = _encode(merged)
        digest = hashlib.sha256(blob).hexdigest()
        name = f"{day}-{digest[:16]}.jsonl.gz"
        _write_atomic(folder / name, blob)
        if day in days and days[day]["file"] != name:
            replaced.append(str(days[day]["file"]))
        info: dict[str, object] = {
            "file": name, "sha256": digest, "entries": len(merged), "first_id": merged[0][0],
            "last_id": merged[-1][0],
            "charged_fen": sum(int(f["amount"]) for _, f in merged if f.get("reason") == "valid")}
        chained = [f for _, f in merged if "hash" in f]
        if chained:
            info["chain"] = {"first_seq": int(chained[0]["seq"]), "last_seq": int(chained[-1]["seq"]),
                             "head": chained[-1]["hash"]}
        days[day] = info
        report.archived += len(merged) - len(old)
        report.files.append(str(folder / name))
        report.bytes_written += len(blob)
    manifest = {"format": FORMAT, "campaign": cid, "days": dict(sorted(days.items()))}
    _write_atomic(folder / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8"))
    _fsync_dir(folder)
    for name in replaced:
        (folder / name).unlink(missing_ok=True)
    if trim:
        await _trim(r, cid, folder, sorted(by_day), entries, report)


async def _trim(r: aioredis.Redis, cid: str, folder: Path, days: list[str], read: list[StreamEntry],
                report: ArchiveReport) -> None:
    """Delete the entries read from the stream that the re-read, checksum-verified files hold."""
    manifest = read_manifest(folder)  # as now on disk
    safe: set[str] = set()
    for day in days:
        safe |= {i for i, _ in read_day(folder, manifest[day])}
    ids = [i for i, _ in read if i in safe]
    for start in range(0, len(ids), XDEL_BATCH):
        report.trimmed += int(await r.xdel(keys.ledger(cid), *ids[start:start + XDEL_BATCH]))


async def archive(r: aioredis.Redis, root: Path, *, older_than_days: int, tz: str, now: float | None = None,
                  trim: bool = True) -> ArchiveReport:
    """Archive every billed campaign's ledger entries from before the billing day
    ``older_than_days`` ago. A campaign whose archive cannot be read is reported and skipped."""
    if older_than_days < 0:
        raise ValueError("older_than_days must be 0 or more")
    before = cutoff_ms(tz, older_than_days, time.time() if now is None else now)
    report = ArchiveReport()
    with _locked(root):
        for cid in sorted(text_set(await r.smembers(keys.BILLING_CAMPAIGNS))):
            report.campaigns += 1
            try:
                await archive_campaign(r, root, cid, before, tz, report, trim=trim)
            except (ArchiveError, ValueError, KeyError) as e:
                report.problems.append(f"campaign {cid}: {e}; its stream entries were kept")
    return report
