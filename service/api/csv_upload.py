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

from service.api.catalog_schemas import AdIn
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


def _header_problem(header: list[str]) -> str | None:
    """What is wrong with the header row, or None."""
    if not any(header):
        return (f"the CSV is empty; its first line must be the header naming the columns {list(REQUIRED)} "
                f"(and any of {list(OPTIONAL)}), then one line per ad")
    if not set(header) & set(REQUIRED + OPTIONAL):
        return (f"the first line {header[:4]} is not a header row; add a first line naming the columns "
                f"{list(REQUIRED)} (and any of {list(OPTIONAL)}) above the first ad")
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if not (missing or unknown):
        return None
    parts = ([f"missing columns {missing}"] if missing else []) + ([f"unknown columns {unknown}"] if unknown else [])
    return f"CSV header: {'; '.join(parts)}; the header must name {list(REQUIRED)} and may add {list(OPTIONAL)}"


def _long_cell(text: str, limit: int) -> int | None:
    """The index of the first cell of the record at the start of ``text`` longer than ``limit``
    characters (the quoting rules of the csv module's default dialect)."""
    col = size = 0
    quoted = False
    i = 0
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == '"' and text[i + 1:i + 2] == '"':
                i += 1
            elif ch == '"':
                quoted = False
                i += 1
                continue
        elif ch == '"' and size == 0:
            quoted = True
            i += 1
            continue
        elif ch == ",":
            col, size = col + 1, 0
            i += 1
            continue
        elif ch in "\r\n":
            return None
        size += 1
        if size > limit:
            return col
        i += 1
    return None


def _unreadable(text: str, line: int, header: list[str], error: csv.Error) -> InvalidInput:
    """The 422 for a record the csv module cannot read (a cell over its size limit: often a quote
    left open, which runs to the end of the file)."""
    limit = csv.field_size_limit()
    record = "".join(text.splitlines(keepends=True)[line - 1:])
    col = _long_cell(record, limit)
    if col is None:
        msg = f"line {line}: the CSV cannot be read there ({error}); check its quotes"
        field = "body"
    else:
        field = header[col] if col < len(header) else f"column {col + 1}"
        msg = (f"line {line}, {field}: a cell is over {limit:,} characters, more than any column allows; "
               "check for a quote (\") that is opened and never closed")
    return InvalidInput(msg, extra={"fields": [{"field": field, "message": "cell too long"}],
                                    "rows": [{"line": line, "errors": [msg]}]})


def parse(raw: bytes) -> list[AdIn]:
    """Every row as a validated :class:`AdIn`, or :class:`InvalidInput` listing every bad row."""
    return [ad for _line, ad in parse_rows(raw)]


def parse_rows(raw: bytes) -> list[tuple[int, AdIn]]:
    """:func:`parse` with each row's line number in the file (the header is line 1)."""
    text = decode(raw)
    reader = csv.reader(io.StringIO(text, newline=""))
    line, header = 1, []
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        problem = _header_problem(header)
        if problem:
            raise InvalidInput(problem, extra={"fields": [{"field": "body", "message": "bad header row"}],
                                               "rows": [{"line": 1, "errors": [problem]}]})
        ads: list[tuple[int, AdIn]] = []
        bad: list[dict[str, Any]] = []
        line = reader.line_num + 1
        for cells in reader:
            row_line, line = line, reader.line_num + 1
            if not cells:
                continue  # a blank line
            if len(ads) + len(bad) >= MAX_ROWS:
                raise InvalidInput(f"the CSV has more than {MAX_ROWS} rows; split it into several uploads",
                                   extra={"fields": [{"field": "body", "message": "too many rows"}]})
            if len(cells) > len(header):
                bad.append({"line": row_line, "errors": ["more cells than header columns; quote cells with commas"]})
                continue
            row = dict(zip(header, cells + [""] * (len(header) - len(cells)), strict=True))
            try:
                ads.append((row_line, AdIn.model_validate(_row_to_input(row))))
            except ValidationError as e:
                errors = [f"{'.'.join(str(p) for p in err['loc']) or 'row'}: "
                          f"{str(err['msg']).removeprefix('Value error, ')}" for err in e.errors()]
                bad.append({"line": row_line, "errors": errors})
            except ValueError as e:
                bad.append({"line": row_line, "errors": [str(e)]})
    except csv.Error as e:
        raise _unreadable(text, line, header, e) from None
    if bad:
        summary = "; ".join(f"line {b['line']}: {b['errors'][0]}" for b in bad[:5])
        more = f" (and {len(bad) - 5} more bad rows)" if len(bad) > 5 else ""
        raise InvalidInput(f"{len(bad)} bad rows, nothing was stored: {summary}{more}; fix them and "
                           "upload the whole file again",
                           extra={"fields": [{"field": "body", "message": "bad rows"}], "rows": bad})
    if not ads:
        raise InvalidInput("the CSV has a header but no rows; add one row per ad",
                           extra={"fields": [{"field": "body", "message": "no rows"}]})
    return ads
