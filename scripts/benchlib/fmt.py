"""Formatting helpers of the benchmark's report."""

from __future__ import annotations

from typing import Any


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2g}×" if a is not None and b else "–"


def g(d: dict[str, Any] | None, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def fmt(x: Any, digits: int = 2) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


def size_label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else (
        f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n))



def stopped_at(b: dict[str, Any]) -> str:
    """How far a build stopped at the limit had got (from its progress lines)."""
    prog = b.get("progress") or {}
    if not prog:
        return ""
    what = "texts encoded" if prog.get("stage") == "encoding" else "ads segmented"
    return f"; {fmt(prog.get('progress'))} {what} after {fmt(prog.get('elapsed_s'))} s"
