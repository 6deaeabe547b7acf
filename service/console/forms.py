"""Form fields as the API wants them: yuan typed by a person → integer fen, lines → lists.

Only shape, never rules: a value the API refuses comes back as the API's own error. A field that
cannot even be read (``12.345`` yuan, ``abc``) raises :class:`FieldError` naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any


class FieldError(ValueError):
    """A form field the console could not read into what the API takes."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def form_error(e: Exception) -> tuple[str, list[dict[str, Any]]]:
    """The message and fields to show a form again with: a field the console could not read, or
    the API's 422; any other error is raised on (its own page shows it)."""
    if isinstance(e, FieldError):
        return e.message, [{"field": e.field}]
    if getattr(e, "status", None) == 422:
        return str(getattr(e, "detail", e)), list(getattr(e, "fields", []))
    raise e


def text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def yuan_to_fen(form: Mapping[str, Any], name: str) -> int | None:
    """'12.30' → 1230; empty → None (no limit); more than two decimals or not a number → FieldError."""
    raw = text(form, name).replace(",", "").replace("¥", "").replace("￥", "")
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise FieldError(name, "not a number of yuan (元), e.g. 500 or 12.50") from None
    if not value.is_finite() or value.as_tuple().exponent < -2:  # type: ignore[operator]
        raise FieldError(name, "yuan with at most two decimals (fen), e.g. 12.50")
    return int(value * 100)


def integer(form: Mapping[str, Any], name: str) -> int | None:
    raw = text(form, name)
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise FieldError(name, "a whole number") from None


def lines(form: Mapping[str, Any], name: str) -> list[str]:
    """One item a line (commas and 、 also separate), blanks dropped, order kept."""
    raw = text(form, name).replace("、", "\n").replace(",", "\n").replace("，", "\n")
    return [x.strip() for x in raw.splitlines() if x.strip()]


def drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def day(value: str | None) -> str | None:
    """A YYYY-MM-DD the API may read, else None (the API's default range)."""
    try:
        return date.fromisoformat(value).isoformat() if value else None
    except ValueError:
        return None
