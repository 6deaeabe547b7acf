"""Ledger retention against the real Redis: archive → verify → trim round trips, re-runs, an
interrupted run, and tampered archive files (service/billing/archive.py, service/billing/ledger.py).

Clicks are decided by the production click script, so their stream ids are "now"; the archive is
run with its clock moved days ahead instead of waiting for entries to age.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import time
from pathlib import Path

import pytest

from matching.click_rules import InvalidReason
from service.billing import archive, ledger
from service.cli import main
from service.store import keys
from service.store.replies import stream_entries
from tests.test_billing import TZ, Env, claim, env

DAY_S = 86400
CAMPAIGNS = ("cmp-a", "cmp-b")


async def some_clicks(e: Env, now: float) -> int:
    """Valid, invalid and repeated clicks on two campaigns; returns the fen charged."""
    charged = 0
    for cid in CAMPAIGNS:
        if not await e.r.exists(keys.budget(cid)):
            await e.campaign(cid, total=10**6)
        for price, reason in [(120, None), (80, None), (50, InvalidReason.BOT), (60, InvalidReason.TOO_FAST)]:
            c = claim(price, cid=cid)
            d = await e.billing.decide_click(c, reason, now)
            await e.billing.decide_click(c, InvalidReason.BOT, now)  # a repeat of each: duplicate or bot
            charged += d.amount_fen
    return charged


async def stream(e: Env, cid: str) -> list[tuple[str, dict[str, str]]]:
    return stream_entries(await e.r.xrange(keys.ledger(cid)))


def test_archive_verify_and_trim_round_trip(redis_url, clean_redis, tmp_path):
    """Entries older than N days move to one checksummed file per campaign and day; verify recomputes
    the same spend from the files; the stream keeps nothing archived; a second run changes nothing."""
    root = tmp_path / "archive"

    async def go() -> None:
        async with env(redis_url) as e:
            now = time.time()
            charged = await some_clicks(e, now)
            before = {cid: await stream(e, cid) for cid in CAMPAIGNS}
            v0 = await ledger.verify(e.r, root)
            assert v0.ok and v0.charged_fen == charged and v0.archived_entries == 0

            rep = await archive.archive(e.r, root, older_than_days=2, tz=TZ, now=now + 3 * DAY_S)
            n = sum(len(x) for x in before.values())
            assert (rep.archived, rep.trimmed, rep.problems) == (n, n, [])
            assert len(rep.files) == len(CAMPAIGNS)  # one day each
            day = e.billing.clock.day(now)
            for cid in CAMPAIGNS:
                assert await e.r.xlen(keys.ledger(cid)) == 0
                folder = archive.campaign_dir(root, cid)
                manifest = json.loads((folder / archive.MANIFEST).read_text())
                info = manifest["days"][day]
                blob = (folder / info["file"]).read_bytes()
                assert hashlib.sha256(blob).hexdigest() == info["sha256"]
                rows = [json.loads(line) for line in gzip.decompress(blob).decode().splitlines()]
                assert [(r.pop("id"), r) for r in rows] == before[cid]  # the oracle: what the stream held
                assert info["charged_fen"] == sum(int(f["amount"]) for _, f in before[cid] if f["reason"] == "valid")

            v = await ledger.verify(e.r, root)
            assert v.ok, v.mismatches
            assert (v.charged_fen, v.entries, v.archived_entries, v.archive_files) == (charged, n, n, 2)

            files = sorted(p.name for p in root.rglob("*.jsonl.gz"))
            again = await archive.archive(e.r, root, older_than_days=2, tz=TZ, now=now + 3 * DAY_S)
            assert (again.archived, again.trimmed, again.files) == (0, 0, [])
            assert sorted(p.name for p in root.rglob("*.jsonl.gz")) == files
    asyncio.run(go())


def test_entries_newer_than_the_cutoff_stay_in_the_stream(redis_url, clean_redis, tmp_path):
    """Archiving entries older than 1 day leaves today's entries where they are and writes nothing."""
    async def go() -> None:
        async with env(redis_url) as e:
            await some_clicks(e, time.time())
            lengths = [await e.r.xlen(keys.ledger(cid)) for cid in CAMPAIGNS]
            rep = await archive.archive(e.r, tmp_path, older_than_days=1, tz=TZ)
            assert (rep.archived, rep.trimmed, rep.files) == (0, 0, [])
            assert [await e.r.xlen(keys.ledger(cid)) for cid in CAMPAIGNS] == lengths
    asyncio.run(go())


def test_an_interrupted_run_counts_once_and_the_next_run_trims(redis_url, clean_redis, tmp_path):
    """Files written but the stream not yet trimmed: verify counts each entry once; the next run
    archives nothing new, only deletes; clicks added later to that day merge into a new day file."""
    async def go() -> None:
        async with env(redis_url) as e:
            now = time.time()
            charged = await some_clicks(e, now)
            later = now + 3 * DAY_S
            first = await archive.archive(e.r, tmp_path, older_than_days=1, tz=TZ, now=later, trim=False)
            assert first.archived > 0 and first.trimmed == 0
            v = await ledger.verify(e.r, tmp_path)
            assert v.ok and v.charged_fen == charged, v.mismatches
            assert v.entries == first.archived  # not twice

            second = await archive.archive(e.r, tmp_path, older_than_days=1, tz=TZ, now=later)
            assert (second.archived, second.trimmed) == (0, first.archived)

            charged += await some_clicks(e, now)  # more of the same day, appended after the trim
            third = await archive.archive(e.r, tmp_path, older_than_days=1, tz=TZ, now=later)
            assert third.archived == third.trimmed == first.archived
            for cid in CAMPAIGNS:
                assert len(list(archive.campaign_dir(tmp_path, cid).glob("*.jsonl.gz"))) == 1  # replaced
            v = await ledger.verify(e.r, tmp_path)
            assert v.ok and v.charged_fen == charged and v.entries == 2 * first.archived, v.mismatches
    asyncio.run(go())


@pytest.mark.parametrize("how", ["amount changed", "file truncated", "file deleted"])
def test_a_tampered_archive_file_is_reported_and_blocks_further_archiving_of_that_day(
        redis_url, clean_redis, tmp_path, how):
    """A day file whose bytes no longer match the manifest's sha256 (or that is gone) fails verify,
    and the next archive run keeps that campaign's stream entries rather than trust the file."""
    async def go() -> None:
        async with env(redis_url) as e:
            now = time.time()
            await some_clicks(e, now)
            later = now + 3 * DAY_S
            await archive.archive(e.r, tmp_path, older_than_days=1, tz=TZ, now=later)
            folder = archive.campaign_dir(tmp_path, "cmp-a")
            [path] = folder.glob("*.jsonl.gz")
            if how == "amount changed":
                text = gzip.decompress(path.read_bytes()).decode()
                assert '"amount": "120"' in text
                path.write_bytes(gzip.compress(text.replace('"amount": "120"', '"amount": "12"').encode(), mtime=0))
            elif how == "file truncated":
                path.write_bytes(path.read_bytes()[:-10])
            else:
                path.unlink()
            v = await ledger.verify(e.r, tmp_path)
            assert not v.ok
            assert any("cmp-a archive day" in m for m in v.mismatches), v.mismatches
            assert all("cmp-b" not in m for m in v.mismatches)

            await some_clicks(e, now)  # more entries of the tampered day
            kept = await e.r.xlen(keys.ledger("cmp-a"))
            rep = await archive.archive(e.r, tmp_path, older_than_days=1, tz=TZ, now=later)
            assert [p for p in rep.problems if "cmp-a" in p]
            assert await e.r.xlen(keys.ledger("cmp-a")) == kept
            assert await e.r.xlen(keys.ledger("cmp-b")) == 0  # the other campaign archived as usual
    asyncio.run(go())


def test_cli_archives_old_entries_and_verify_covers_archive_and_stream(redis_url, clean_redis, tmp_path,
                                                                       monkeypatch, capsys):
    """`admatch ledger archive --older-than-days 30` files a 40-day-old entry and leaves today's;
    `admatch ledger verify` then adds both up to the spend counter."""
    old_ms = int((time.time() - 40 * DAY_S) * 1000)
    cid = "cmp-old"

    async def seed() -> None:
        async with env(redis_url) as e:
            await e.campaign(cid, total=10**6)
            await e.r.xadd(keys.ledger(cid), {"imp": "i0", "ad": "ad1", "pub": "pub1", "amount": "300",
                                              "reason": "valid", "day": "20000101", "hour": "2000010110",
                                              "ts": str(old_ms)}, id=f"{old_ms}-0")
            await e.r.incrby(keys.spend_total(cid), 300)  # its day and hour counters expired long ago
            await e.billing.decide_click(claim(70, cid=cid), None, time.time())
    asyncio.run(seed())
    monkeypatch.setenv("ADMATCH_REDIS_URL", redis_url)
    monkeypatch.setenv("ADMATCH_DATA_DIR", str(tmp_path))
    with pytest.raises(SystemExit) as done:
        main(["ledger", "archive", "--older-than-days", "30"])
    assert done.value.code == 0
    assert "1 entries archived into 1 files" in capsys.readouterr().out
    assert [p.name for p in (tmp_path / "ledger-archive" / cid).glob("*.gz")][0].startswith("20000101-")
    assert clean_redis.xlen(keys.ledger(cid)) == 1
    with pytest.raises(SystemExit) as done:
        main(["ledger", "verify"])
    out = capsys.readouterr().out
    assert done.value.code == 0, out
    assert "ok: 1 campaigns, 2 ledger entries (1 from 1 archive files" in out and "370 fen charged" in out


def test_campaign_folders_cannot_leave_the_archive_root(tmp_path: Path):
    """Campaign ids with dots, slashes or percent signs map to one folder inside the root, and back."""
    for cid in ("..", "../etc", "a/b", "c.d", "50%", "cmp_1a2b"):
        folder = archive.campaign_dir(tmp_path, cid)
        assert folder.parent == tmp_path and folder.name not in (".", "..")
        (folder).mkdir()
        (folder / archive.MANIFEST).write_text('{"format": 1, "days": {}}')
    assert sorted(archive.archived_campaigns(tmp_path)) == sorted(["..", "../etc", "a/b", "c.d", "50%", "cmp_1a2b"])
