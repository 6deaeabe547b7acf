"""The ledger's hash chain: what each entry's hash covers, how scripts include it, and the walk
that checks one campaign's chain.

Every entry of a campaign's ledger stream (``am:{c:C}:ledger``) carries, besides its own fields,
``seq`` (1, 2, 3 … per campaign), ``prev`` (the ``hash`` of the entry before it) and ``hash``:
the SHA-256, in lowercase hex, of the entry's **canonical encoding** (version 1), the UTF-8 bytes
of::

    admatch-ledger/1␊
    seq=<seq>␊
    prev=<prev>␊
    <name>=<value>␊        one line for each other field, names in ascending byte order

``␊`` is one line feed (0x0A), ending every line including the last; no other whitespace.
"Other fields" are all the entry's fields except ``seq``, ``prev`` and ``hash`` — for a click:
``ad, amount, day, hour, imp, pub, reason, ts``; for a CPA conversion's charge also ``event``,
``kind`` (``conv``) and ``order``. Values are exactly as stored (the stream holds strings):
integers in decimal ASCII, no sign, no leading zeros (``amount`` in fen, ``ts`` in unix
milliseconds, ``seq``); a ``\\`` inside a value is written ``\\\\`` and a line feed ``\\n`` (only
an advertiser's order id can hold a ``\\``; no value holds a line feed). The first entry's
``prev`` is the campaign's **genesis**: the SHA-256 hex of ``admatch-ledger/1 genesis <campaign id>`` (no line feed), which ties the chain to
its campaign. An auditor recomputes an entry with any SHA-256 tool (a worked example with
``printf … | sha256sum`` is in the README, *Ledger chain*; ``tests/test_ledger_chain.py`` checks it).

Changing any field changes the entry's hash; deleting, inserting or reordering entries breaks the
``seq``/``prev`` links of the entry after. Rewriting the whole chain from the changed entry on is
still possible for someone with write access to Redis, which is why the chain's **head** per
campaign and billing day (the hash and seq of the day's last entry, and the day's entry count) is
published in the advertiser's report: a head once seen by the advertiser pins everything before it.

**Entries from before chaining** (no ``hash`` field) are the campaign's *unchained prefix*: verify
counts their money as before and reports how many there are; the first chained entry links to the
genesis (the marker that chaining starts there). An unchained entry after a chained one is a break.

**Including the chain in a script.** :func:`with_chain` prepends ``lua/sha256.lua`` and
``lua/ledger_chain.lua`` to a script; the script then appends with
``ledger_append(stream_key, head_key, campaign_id, day, {name1, value1, …})`` (names ascending)
and must list both keys in its ``KEYS`` (they share the ``{c:C}`` hash tag). ``click.lua`` does;
so does the CPA conversion script (``with_chain("conversion.lua", "service.conversions")``, its
entries carrying ``kind=conv``, ``event`` and ``order`` besides), so they join the same chain. The chain head lives in ``am:{c:C}:ledger:head`` (HASH:
``seq``, ``hash``, and per billing day ``h:<day>``, ``s:<day>``, ``n:<day>``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources

HEADER = "admatch-ledger/1"
CHAIN_FIELDS = ("seq", "prev", "hash")


def _lua(name: str, package: str = "service.billing.lua") -> str:
    return resources.files(package).joinpath(name).read_text("utf-8")


def with_chain(name: str, package: str = "service.billing.lua") -> str:
    """The Lua script ``name`` (in ``package``: service/billing/lua unless named) with the SHA-256
    and chain modules before it."""
    return _lua("sha256.lua") + "\n" + _lua("ledger_chain.lua") + "\n" + _lua(name, package)


def genesis(campaign_id: str) -> str:
    """The ``prev`` of a campaign's first chained entry."""
    return hashlib.sha256(f"{HEADER} genesis {campaign_id}".encode()).hexdigest()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n") if ("\\" in value or "\n" in value) else value


def canonical(fields: Mapping[str, str]) -> bytes:
    """The bytes an entry's ``hash`` is the SHA-256 of (``fields`` include ``seq`` and ``prev``;
    a ``hash`` among them is ignored)."""
    lines = [HEADER, f"seq={fields['seq']}", f"prev={fields['prev']}"]
    lines += [f"{k}={_escape(fields[k])}" for k in sorted(fields) if k not in CHAIN_FIELDS]
    return ("\n".join(lines) + "\n").encode("utf-8")


def entry_hash(fields: Mapping[str, str]) -> str:
    return hashlib.sha256(canonical(fields)).hexdigest()


@dataclass
class DayHead:
    """The chain's head for one billing day: its last entry's seq and hash, and how many entries."""

    seq: int
    hash: str
    entries: int

    def as_dict(self) -> dict[str, object]:
        return {"head": self.hash, "seq": self.seq, "entries": self.entries}


@dataclass
class ChainWalk:
    """Checks one campaign's entries fed in ledger order (stream id order, archive first).

    After :meth:`add` has seen every entry, ``first_break`` names the first entry whose chain
    does not hold — its own hash does not match its fields (edited), or its seq/prev do not
    follow the entry before it (an entry deleted, inserted or moved) — and ``breaks`` counts them
    all. Walking continues from each entry as found, so one deletion is one break."""

    campaign: str
    seq: int = 0
    head: str = ""
    chained: int = 0
    unchained: int = 0  # entries from before chaining, ahead of the first chained one
    breaks: int = 0
    first_break: tuple[str, str] | None = None  # (entry id, what is wrong)
    days: dict[str, DayHead] = field(default_factory=dict)
    last_id: str | None = None

    def __post_init__(self) -> None:
        self.head = self.head or genesis(self.campaign)

    def _broken(self, entry_id: str, why: str) -> None:
        self.breaks += 1
        if self.first_break is None:
            self.first_break = (entry_id, why)

    def add(self, entry_id: str, fields: Mapping[str, str]) -> None:
        claimed = fields.get("hash")
        if claimed is None or "seq" not in fields or "prev" not in fields:
            if self.chained == 0 and self.breaks == 0:
                self.unchained += 1
            else:
                self._broken(entry_id, "has no seq/prev/hash after chained entries (inserted, or its chain "
                                       "fields removed)")
            return
        try:
            seq = int(fields["seq"])
        except ValueError:
            seq = -1
        if entry_hash(fields) != claimed:
            self._broken(entry_id, f"its fields do not hash to its hash {claimed[:16]}… (an entry changed)")
        elif seq != self.seq + 1:
            after = f"entry {self.last_id} (seq {self.seq})" if self.last_id else "the genesis"
            self._broken(entry_id, f"seq {fields['seq']} follows {after}: expected seq {self.seq + 1} "
                                   "(entries deleted, inserted or moved)")
        elif fields["prev"] != self.head:
            self._broken(entry_id, "prev is not the hash of the entry before it (entries deleted, inserted "
                                   "or moved)")
        self.seq, self.head, self.last_id = seq, claimed, entry_id
        self.chained += 1
        day = fields.get("day", "")
        before = self.days.get(day)
        self.days[day] = DayHead(seq, claimed, (before.entries if before else 0) + 1)


def parse_head(raw: Mapping[str, str]) -> tuple[int, str | None, dict[str, DayHead]]:
    """The chain head hash (``am:{c:C}:ledger:head``) as (seq, hash, day → head)."""
    days: dict[str, DayHead] = {}
    for k, v in raw.items():
        if k.startswith("h:"):
            day = k[2:]
            days[day] = DayHead(int(raw.get(f"s:{day}", 0)), v, int(raw.get(f"n:{day}", 0)))
    return int(raw.get("seq", 0)), raw.get("hash"), days
