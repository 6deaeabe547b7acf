"""The ledger's hash chain against the real Redis (service/billing/chain.py, lua/sha256.lua,
lua/ledger_chain.lua): the Lua SHA-256 against hashlib, the chain the click script writes against
the Python encoding, tampering that ``ledger verify`` must name, archive → stream continuity,
entries from before chaining, and the heads published in reports.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import time
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from matching.click_rules import InvalidReason
from service.billing import archive, chain, ledger, reports
from service.store import keys
from service.store.replies import StreamEntry, stream_entries
from tests.test_billing import TZ, Env, claim, env

DAY_S = 86400
README = Path(__file__).parents[1] / "README.md"


# ---- SHA-256 in Lua: hashlib is the oracle -------------------------------------------------------

@pytest.fixture
def lua_sha256(clean_redis: redis.Redis):  # noqa: ANN201 - a callable
    script = clean_redis.register_script(chain._lua("sha256.lua") + "\nreturn sha256_hex(ARGV[1])")

    def run(message: bytes) -> str:
        return str(script(args=[message]))
    return run


def test_lua_sha256_matches_hashlib_at_every_padding_boundary(lua_sha256):
    """Every length from 0 to 200 bytes (one to four blocks, both sides of the 55/56 and 64 byte
    padding edges) and long messages hash as hashlib does."""
    for n in [*range(0, 201), 1000, 4095, 4096, 65537]:
        message = bytes((i * 7 + n) % 256 for i in range(n))
        assert lua_sha256(message) == hashlib.sha256(message).hexdigest(), n


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=st.binary(max_size=700))
@example(message=b"\xff" * 300)
@example(message=b"\x00" * 119)
def test_lua_sha256_matches_hashlib_on_random_bytes(lua_sha256, message):
    """Random byte strings of up to 700 bytes (up to twelve blocks) hash as hashlib does."""
    assert lua_sha256(message) == hashlib.sha256(message).hexdigest()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
@example(text="中华人民共和国广告法第九条：不得使用“国家级”“最高级”“最佳”等用语。" * 3)
def test_lua_sha256_matches_hashlib_on_utf8_text(lua_sha256, text):
    """Unicode text, Chinese included, hashes by its UTF-8 bytes as hashlib does."""
    data = text.encode("utf-8")
    assert lua_sha256(data) == hashlib.sha256(data).hexdigest()


# ---- the chain the click script writes ------------------------------------------------------------

async def clicks(e: Env, cid: str, n: int = 6, now: float | None = None, pub: str = "pub1") -> None:
    """``n`` clicks on campaign ``cid``: charged ones and a bot click every third."""
    now = time.time() if now is None else now
    if not await e.r.exists(keys.budget(cid)):
        await e.campaign(cid, total=10**7)
    for i in range(n):
        reason = InvalidReason.BOT if i % 3 == 2 else None
        await e.billing.decide_click(claim(100 + i, cid=cid, pub=pub), reason, now)


async def entries(e: Env, cid: str) -> list[StreamEntry]:
    return stream_entries(await e.r.xrange(keys.ledger(cid)))


async def rewrite(e: Env, cid: str, new: list[StreamEntry]) -> None:
    """Replace a campaign's stream with ``new`` (same ids), as someone with write access could."""
    await e.r.delete(keys.ledger(cid))
    for i, f in new:
        await e.r.xadd(keys.ledger(cid), f, id=i)


def test_the_click_script_chains_entries_as_the_python_encoding_says(redis_url, clean_redis):
    """Each entry's hash is the SHA-256 of its canonical encoding (recomputed in Python), seq counts
    1, 2, 3…, prev is the hash before it (the campaign's genesis for the first), and the head key
    holds the last entry and each day's head; a value with a backslash and a line feed is escaped
    the same way on both sides."""
    async def go() -> None:
        async with env(redis_url) as e:
            await clicks(e, "cmp-c", 5)
            await clicks(e, "cmp-c", 2, pub="odd\\pub\nid")
            got = await entries(e, "cmp-c")
            assert len(got) == 7
            prev = chain.genesis("cmp-c")
            for n, (_id, f) in enumerate(got, start=1):
                assert list(f)[-3:] == ["seq", "prev", "hash"]
                assert [k for k in f if k not in chain.CHAIN_FIELDS] == sorted(k for k in f if k not in chain.CHAIN_FIELDS)
                assert (f["seq"], f["prev"]) == (str(n), prev)
                assert f["hash"] == chain.entry_hash(f) == hashlib.sha256(chain.canonical(f)).hexdigest()
                prev = f["hash"]
            assert b"\\\\pub\\nid" in chain.canonical(got[-1][1])
            head = await e.r.hgetall(keys.ledger_head("cmp-c"))
            day = got[-1][1]["day"]
            assert head == {"seq": "7", "hash": prev, f"h:{day}": prev, f"s:{day}": "7", f"n:{day}": "7"}
            v = await ledger.verify(e.r)
            assert v.ok, v.mismatches
            assert (v.chained_entries, v.unchained_entries, v.broken) == (7, 0, {})
    asyncio.run(go())


def test_the_readme_example_recomputes_with_sha256sum_semantics():
    """The worked example in the README (an entry, its canonical bytes and its hash) is what
    chain.canonical and SHA-256 give, so an auditor following it gets the same digest."""
    text = README.read_text("utf-8")
    fields = {"ad": "ad_1", "amount": "120", "day": "20261205", "hour": "2026120514",
              "imp": "5f0c2b7e9d3a4c1b8e6f0a2d4c6b8e0f", "pub": "pub_1", "reason": "valid",
              "ts": "1796450400000", "seq": "1", "prev": chain.genesis("cmp_1")}
    digest = chain.entry_hash(fields)
    assert chain.genesis("cmp_1") in text
    assert digest in text
    assert chain.canonical(fields).decode() == (
        "admatch-ledger/1\nseq=1\nprev=" + chain.genesis("cmp_1") + "\nad=ad_1\namount=120\nday=20261205\n"
        "hour=2026120514\nimp=5f0c2b7e9d3a4c1b8e6f0a2d4c6b8e0f\npub=pub_1\nreason=valid\nts=1796450400000\n")


# ---- tampering: verify names the first broken entry -----------------------------------------------

@pytest.mark.parametrize("how", ["edit a field", "delete an entry", "reorder two entries"])
def test_verify_names_the_first_broken_entry(redis_url, clean_redis, how):
    """Each in a fresh campaign: an entry's amount edited, an entry deleted, or two entries swapped;
    ledger verify fails and names the first entry whose chain no longer holds (by its stream id)."""
    async def go() -> None:
        async with env(redis_url) as e:
            cid = f"cmp-{how.split()[0]}"
            await clicks(e, cid, 8)
            await clicks(e, "cmp-untouched", 3)
            got = await entries(e, cid)
            ids = [i for i, _ in got]
            if how == "edit a field":
                got[3][1]["amount"] = "1"
                await rewrite(e, cid, got)
                expected, words = ids[3], "do not hash"
            elif how == "delete an entry":
                await e.r.xdel(keys.ledger(cid), ids[4])
                expected, words = ids[5], "expected seq 5"
            else:
                contents = [f for _, f in got]
                contents[2], contents[3] = contents[3], contents[2]  # same ids, contents swapped
                await rewrite(e, cid, list(zip(ids, contents, strict=True)))
                expected, words = ids[2], "expected seq 3"
            v = await ledger.verify(e.r)
            assert not v.ok
            assert v.broken == {cid: expected}
            [msg] = [m for m in v.mismatches if "chain broken" in m]
            assert f"campaign {cid}: ledger chain broken at entry {expected}" in msg and words in msg, msg
    asyncio.run(go())


def test_verify_reports_entries_missing_from_the_end_of_the_chain(redis_url, clean_redis):
    """Deleting the newest entries leaves the chain intact up to there, but the stored head (what
    reports published) is further on: verify says how many are missing after which entry."""
    async def go() -> None:
        async with env(redis_url) as e:
            await clicks(e, "cmp-tail", 6)
            got = await entries(e, "cmp-tail")
            await e.r.xdel(keys.ledger("cmp-tail"), got[-1][0], got[-2][0])
            v = await ledger.verify(e.r)
            assert not v.ok
            assert v.broken == {"cmp-tail": got[-3][0]}
            assert any("the last 2 entries are missing" in m and got[-3][0] in m for m in v.mismatches), v.mismatches
    asyncio.run(go())


def test_entries_from_before_chaining_form_an_unchained_prefix(redis_url, clean_redis):
    """Ledger entries without chain fields (written before chaining) ahead of the first chained one
    verify, counted as unchained; the first chained entry links to the genesis. One inserted after
    chained entries is a break."""
    async def go() -> None:
        async with env(redis_url) as e:
            await e.campaign("cmp-old", total=10**6)
            legacy = {"imp": "i1", "ad": "ad1", "pub": "pub1", "amount": "50", "reason": "valid",
                      "day": "20240101", "hour": "2024010112", "ts": "1704081600000"}
            await e.r.xadd(keys.ledger("cmp-old"), legacy, id="1704081600000-0")
            await e.r.incrby(keys.spend_total("cmp-old"), 50)
            await e.r.hset(keys.stats("cmp-old", "2024010112"), mapping={"click": 1, "spend": 50})
            await clicks(e, "cmp-old", 3)
            got = await entries(e, "cmp-old")
            assert "hash" not in got[0][1] and got[1][1]["prev"] == chain.genesis("cmp-old")
            v = await ledger.verify(e.r)
            assert v.ok, v.mismatches
            assert (v.unchained_entries, v.chained_entries) == (1, 3)

            await e.r.xadd(keys.ledger("cmp-old"), {**legacy, "amount": "0", "reason": "bot"})
            await e.r.hincrby(keys.stats("cmp-old", "2024010112"), "inv:bot", 1)
            v = await ledger.verify(e.r)
            assert not v.ok and "no seq/prev/hash after chained entries" in " ".join(v.mismatches)
    asyncio.run(go())


# ---- archive → stream ----------------------------------------------------------------------------

def _tamper_archived(folder: Path, day_info: dict[str, object], edit: str, value: str) -> None:
    """Change the ``edit`` field of the last archived entry and fix the manifest's checksum, as
    someone rewriting the archive would: only the chain can tell."""
    path = folder / str(day_info["file"])
    rows = [json.loads(x) for x in gzip.decompress(path.read_bytes()).decode().splitlines()]
    rows[-1][edit] = value
    blob = gzip.compress("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode(),
                         mtime=0)
    path.write_bytes(blob)
    manifest = json.loads((folder / archive.MANIFEST).read_text())
    for info in manifest["days"].values():
        if info["file"] == day_info["file"]:
            info["sha256"] = hashlib.sha256(blob).hexdigest()
    (folder / archive.MANIFEST).write_text(json.dumps(manifest))


def test_chain_continues_from_the_archive_into_the_stream(redis_url, clean_redis, tmp_path):
    """Archived files keep seq/prev/hash; entries appended after an archive run link to the last
    archived one; verify walks archive then stream without a break; deleting the first stream
    entry names the next one, and an archived entry rewritten (checksum fixed) is named too."""
    async def go() -> None:
        async with env(redis_url) as e:
            now = time.time()
            await clicks(e, "cmp-arc", 5, now=now)
            rep = await archive.archive(e.r, tmp_path, older_than_days=1, tz=TZ, now=now + 3 * DAY_S)
            assert rep.archived == rep.trimmed == 5 and await e.r.xlen(keys.ledger("cmp-arc")) == 0
            folder = archive.campaign_dir(tmp_path, "cmp-arc")
            [info] = archive.read_manifest(folder).values()
            archived = archive.read_day(folder, info)
            assert info["chain"] == {"first_seq": 1, "last_seq": 5, "head": archived[-1][1]["hash"]}

            await clicks(e, "cmp-arc", 3, now=now)
            stream = await entries(e, "cmp-arc")
            assert stream[0][1]["prev"] == archived[-1][1]["hash"] and stream[0][1]["seq"] == "6"
            v = await ledger.verify(e.r, tmp_path)
            assert v.ok, v.mismatches
            assert (v.chained_entries, v.archived_entries) == (8, 5)

            await e.r.xdel(keys.ledger("cmp-arc"), stream[0][0])
            v = await ledger.verify(e.r, tmp_path)
            assert v.broken == {"cmp-arc": stream[1][0]}

            await rewrite(e, "cmp-arc", stream)  # put it back, then rewrite the archive instead
            assert (await ledger.verify(e.r, tmp_path)).ok
            _tamper_archived(folder, info, "pub", "pub-other")
            v = await ledger.verify(e.r, tmp_path)
            assert not any("archive day" in m for m in v.mismatches)  # the checksum was fixed …
            assert v.broken == {"cmp-arc": archived[-1][0]}  # … but the chain names the entry
    asyncio.run(go())


def test_an_entry_filed_under_the_day_before_is_walked_in_ledger_order(redis_url, clean_redis, tmp_path):
    """Around midnight a click decided just before it can reach Redis after one decided just after:
    its entry is filed in the earlier day's archive file but sits between the later day's entries
    in the chain; verify merges the files by stream id and finds no break."""
    async def go() -> None:
        async with env(redis_url) as e:
            now = time.time()
            await clicks(e, "cmp-mid", 2, now=now)
            await clicks(e, "cmp-mid", 1, now=now - DAY_S)  # the straggler: yesterday's billing day
            await clicks(e, "cmp-mid", 1, now=now)
            await archive.archive(e.r, tmp_path, older_than_days=1, tz=TZ, now=now + 3 * DAY_S)
            days = archive.read_manifest(archive.campaign_dir(tmp_path, "cmp-mid"))
            late, early = (days[e.billing.clock.day(t)] for t in (now, now - DAY_S))
            key = archive.id_key
            assert key(str(late["first_id"])) < key(str(early["first_id"])) < key(str(late["last_id"]))
            v = await ledger.verify(e.r, tmp_path)
            assert v.ok, v.mismatches
            assert v.chained_entries == 4
    asyncio.run(go())


# ---- heads in reports ----------------------------------------------------------------------------

def test_campaign_reports_publish_each_days_chain_head(redis_url, clean_redis):
    """chain_heads gives, per ISO day with entries, the hash and seq of that day's last entry and
    the day's entry count; days without entries are left out."""
    async def go() -> None:
        async with env(redis_url) as e:
            now = time.time()
            await clicks(e, "cmp-rep", 2, now=now - DAY_S)
            await clicks(e, "cmp-rep", 3, now=now)
            got = await entries(e, "cmp-rep")
            today = e.billing.clock.at(now).date()
            yesterday = e.billing.clock.at(now - DAY_S).date()
            heads = await reports.chain_heads(e.r, "cmp-rep", yesterday, today)
            assert {d: h.as_dict() for d, h in heads.items()} == {
                yesterday.isoformat(): {"head": got[1][1]["hash"], "seq": 2, "entries": 2},
                today.isoformat(): {"head": got[4][1]["hash"], "seq": 5, "entries": 3}}
            assert await reports.chain_heads(e.r, "cmp-rep", today, today) == {today.isoformat(): heads[today.isoformat()]}
            assert await reports.chain_heads(e.r, "cmp-none", yesterday, today) == {}
    asyncio.run(go())
