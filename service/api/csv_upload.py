"""CSV bulk upload of ads: decoding, row parsing and validation, all rows checked before any is kept.

Columns (header row required; order free): ``title, landing_url, keywords, bid_fen`` and
optionally ``description, keyword_bids, negative_keywords, status, target_categories,
exclude_categories, allow_sensitive``. Keywords carry their match type: ``[exact]``, “phrase”
(full-width quotes, or ASCII quotes inside a quoted cell), bare = broad. Lists use ``|`` between items
(``;`` and the full-width ``；`` work too); ``keyword_bids`` items are ``keyword:fen``.
Rows creative review flags are stored all the same (pending review; service.review.creative_review).
Encoding: UTF-8 with or without BOM; GBK/GB18030 (what Excel writes on Chinese Windows) is
decoded too. Anything else is refused with a message saying how to save the file.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from pydantic import ValidationError

from service.api.schemas import AdIn
from service.errors import InvalidInput

REQUIRED = ("title", "landing_url", "keywords", "bid_fen")
OPTIONAL = ("description", "keyword_bids", "negative_keywords", "status", "target_categories",
            "exclude_categories", "allow_sensitive")
MAX_ROWS = 10_000
_LIST_SPLIT = re.compile(r"[|;；]")


def decode(raw: bytes) -> str:
    """UTF-8 (BOM optional), else GB18030 (a superset of GBK); otherwise a clear refusal."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030")
    except UnicodeDecodeError:
        raise InvalidInput("the CSV file is neither UTF-8 nor GBK; save it as 'CSV UTF-8' and upload again",
                           extra={"fields": [{"field": "body", "message": "unknown text encoding"}]}) from None


def _split(cell: str) -> list[str]:
    return [x.strip() for x in _LIST_SPLIT.split(cell) if x.strip()]


def _row_to_input(row: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": row.get("title", ""),
        "landing_url": row.get("landing_url", ""),
        "keywords": _split(row.get("keywords", "")),
        "bid_fen": row.get("bid_fen", "").strip(),
    }
    if row.get("description"):
        data["description"] = row["description"]
    if row.get("negative_keywords"):
        data["negative_keywords"] = _split(row["negative_keywords"])
    if row.get("status"):
        data["status"] = row["status"].strip()
    for name in ("target_categories", "exclude_categories"):
        if row.get(name):
            data[name] = _split(row[name])
    if row.get("allow_sensitive"):
        data["allow_sensitive"] = row["allow_sensitive"].strip().lower() in ("1", "true", "yes", "是")
    if row.get("keyword_bids"):
        bids: dict[str, str] = {}
        for item in _split(row["keyword_bids"]):
            kw, sep, fen = item.rpartition(":")
            if not sep:
                kw, sep, fen = item.rpartition("：")
            if not sep:
                raise ValueError(f"keyword_bids item {item!r} is not keyword:fen")
            bids[kw.strip()] = fen.strip()
        data["keyword_bids"] = bids
    return data


def parse(raw: bytes) -> list[AdIn]:
    """Every row as a validated :class:`AdIn`, or :class:`InvalidInput` listing every bad row."""
    return [ad for _line, ad in parse_rows(raw)]


def parse_rows(raw: bytes) -> list[tuple[int, AdIn]]:
    """:func:`parse` with each row's line number in the file (the header is line 1)."""
    text = decode(raw)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing columns {missing}")
        if unknown:
            parts.append(f"unknown columns {unknown}")
        raise InvalidInput(f"CSV header: {'; '.join(parts)}; the header must name "
                           f"{list(REQUIRED)} and may add {list(OPTIONAL)}",
                           extra={"rows": [{"line": 1, "errors": parts}]})
    reader.fieldnames = header
    ads: list[tuple[int, AdIn]] = []
    bad: list[dict[str, Any]] = []
    for row in reader:
        line = reader.line_num
        if len(ads) + len(bad) >= MAX_ROWS:
            raise InvalidInput(f"the CSV has more than {MAX_ROWS} rows; split it into several uploads")
        if None in row:
            bad.append({"line": line, "errors": ["more cells than header columns; quote cells with commas"]})
            continue
        try:
            ads.append((line, AdIn.model_validate(_row_to_input({k: v or "" for k, v in row.items()}))))
        except ValidationError as e:
            errors = [f"{'.'.join(str(p) for p in err['loc']) or 'row'}: "
                      f"{str(err['msg']).removeprefix('Value error, ')}" for err in e.errors()]
            bad.append({"line": line, "errors": errors})
        except ValueError as e:
            bad.append({"line": line, "errors": [str(e)]})
    if bad:
        summary = "; ".join(f"line {b['line']}: {b['errors'][0]}" for b in bad[:5])
        more = f" (and {len(bad) - 5} more bad rows)" if len(bad) > 5 else ""
        raise InvalidInput(f"{len(bad)} bad rows, nothing was stored: {summary}{more}; fix them and "
                           "upload the whole file again", extra={"rows": bad})
    if not ads:
        raise InvalidInput("the CSV has a header but no rows; add one row per ad")
    return ads
