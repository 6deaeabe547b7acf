"""Report rows as the series the console's charts draw (service/console/static/console.js reads
them from a JSON block on the page; ECharts draws them)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

SERIES = ("impressions", "viewable_impressions", "clicks", "invalid_total", "conversions")


def _label(period: str, hours: bool) -> str:
    """'2026-12-05T20:00' → '12-05 20:00' on hourly charts (they span two days)."""
    return f"{period[5:10]} {period[11:16]}" if hours and len(period) >= 16 else period


def report_chart(rows: list[dict[str, Any]], *, hours: bool = False, money: str = "spend_fen") -> dict[str, Any]:
    """{x: periods, counts: {name: [...]}, money: [yuan...], ctr: [%...]} for one report."""
    return {
        "x": [_label(r["period"], hours) for r in rows],
        "counts": {name: [int(r.get(name, 0)) for r in rows] for name in SERIES},
        "money": [round(int(r.get(money, 0)) / 100, 2) for r in rows],
        "ctr": [round(float(r.get("ctr", 0.0)) * 100, 3) for r in rows],
    }


def invalid_by_reason(total: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": k, "value": v} for k, v in sorted(total.get("invalid_clicks", {}).items()) if v]


def day_before(day: str) -> str:
    """The hourly charts show the last two days: from the day before the report's last day."""
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()
