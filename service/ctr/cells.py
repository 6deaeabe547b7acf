"""How the model's cells are written in Redis and carried in click tokens.

A cell (:class:`matching.ctr.CellKey`) is counted in its campaign's day hash
(:func:`service.store.keys.ctr_cells`) under the field prefix
``<ad>␟<category>␟<keyword>␟<publisher>␟<slot>␟<band>␟`` (␟ = U+001F) followed by ``n``
(impressions), ``e`` (Σ relevance score in millionths) or ``c`` (genuine clicks). A click token
carries the impression's part of it (category, keyword, slot, band) as ``ctx``, so the click path
counts the click in the same cell without reading anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from matching.ctr import NONE, CellKey

SEP = "\x1f"
EXPOSURE_SCALE = 1_000_000  # relevance scores are counted in millionths (HINCRBY takes integers)


def _clean(part: str) -> str:
    return part.replace(SEP, " ")


def field_prefix(key: CellKey) -> str:
    """The hash-field prefix of a cell (its campaign is in the key name)."""
    return SEP.join((_clean(key.ad), _clean(key.category), _clean(key.keyword), _clean(key.publisher),
                     str(key.position), str(key.band))) + SEP


def context(category: str, keyword: str, position: int, band: int) -> str:
    """What a click token carries of its impression's cell."""
    return SEP.join((_clean(category), _clean(keyword), str(position), str(band)))


def cell_of_click(campaign: str, ad: str, publisher: str, ctx: str | None) -> CellKey | None:
    """The cell a click on an impression with ``ctx`` counts in; None for tokens without one
    (issued before the model existed) or with one that does not parse."""
    if not ctx:
        return None
    parts = ctx.split(SEP)
    if len(parts) != 4:
        return None
    try:
        position, band = int(parts[2]), int(parts[3])
    except ValueError:
        return None
    return CellKey(campaign, ad, parts[0] or NONE, parts[1] or NONE, publisher, position, band)


def parse(campaign: str, fields: Mapping[str, str], into: dict[CellKey, list[int]]) -> None:
    """Add a campaign day hash's counts into ``into`` (cell → [impressions, exposure millionths,
    clicks]); fields that are not a cell's are skipped."""
    for name, value in fields.items():
        parts = name.split(SEP)
        if len(parts) != 7 or parts[6] not in ("n", "e", "c"):
            continue
        try:
            key = CellKey(campaign, parts[0], parts[1], parts[2], parts[3], int(parts[4]), int(parts[5]))
            amount = int(value)
        except ValueError:
            continue
        counts = into.get(key)
        if counts is None:
            counts = into[key] = [0, 0, 0]
        counts["nec".index(parts[6])] += amount


def merge(parts: Iterable[Mapping[CellKey, list[int]]]) -> dict[CellKey, list[int]]:
    out: dict[CellKey, list[int]] = {}
    for part in parts:
        for key, (n, e, c) in part.items():
            got = out.get(key)
            if got is None:
                out[key] = [n, e, c]
            else:
                got[0] += n
                got[1] += e
                got[2] += c
    return out
