"""The benchmark's targets and their rows in the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchlib.fmt import fmt, g, stopped_at
from benchlib.report_openrtb import openrtb_targets


def targets(results: list[dict[str, Any]], analyzer: dict[str, Any] | None = None
            ) -> list[tuple[str, Any, float | None, bool]]:
    """(target, measured value or None, limit (None: a figure to state, no limit), whether more is better)."""
    by = {r["size"]: r for r in results}
    r100, r1m = by.get(100_000, {}), by.get(1_000_000, {})
    built_1m = r1m and not g(r1m, "build", "failed")
    # The target is a serving process's memory (the build is a separate, nightly process: its
    # peak is in the build table): `admatch serve` after the HTTP runs, else the loaded process.
    serve_1m = (g(r1m, "http", "serve_rss_mb") or g(r1m, "inproc", "rss_loaded_mb")) if built_1m else None
    semantic = any(g(r, "build", "mode") in ("cold", "warm") for r in results)
    rows: list[tuple[str, Any, float | None, bool]] = [
        ("100k ads: in-process p99 uncached ≤ 15 ms", g(r100, "inproc", "uncached", "p99"), 15.0, False),
        ("100k ads: in-process p99 cached ≤ 2 ms", g(r100, "inproc", "cached", "p99"), 2.0, False),
        ("100k ads: HTTP p99 cached ≤ 3 ms" + (" (analysis queue on)" if semantic else ""),
         g(r100, "http", "latency", "cached_wrk", "p99_ms") or g(r100, "http", "latency", "cached", "p99"), 3.0, False),
        ("100k ads: ≥ 1,000 matches/s over HTTP, 2 workers, cached, billing on"
         + (" (analysis queue on)" if semantic else ""), g(r100, "http", "load", "rps"), 1000.0, True),
    ]
    rows += openrtb_targets(r100)
    if semantic:
        rows += [
            ("100k ads: in-process p99 of a page ranked with its stored vector ≤ 15 ms (the uncached budget)",
             g(r100, "inproc", "analysed", "stored", "p99"), 15.0, False),
            ("100k ads: in-process p99 of a short page encoded inline ≤ 15 ms (the uncached budget)",
             g(r100, "inproc", "analysed", "short", "inline", "p99"), 15.0, False),
            ("1M ads: build from a warm vector cache ≤ 10 min (s)",
             g(r1m, "build", "total_s") if g(r1m, "build", "mode") == "warm" else None, 600.0, False),
            ("1M ads: build from a cold vector cache, every ad text encoded (s; stated)",
             g(r1m, "build", "cold", "total_s") or g(r1m, "build", "total_s"), None, False),
        ]
    else:
        rows.append(("1M ads: build ≤ 10 min (s)", g(r1m, "build", "total_s"), 600.0, False))
    rows += [
        ("1M ads: RSS of one serving process ≤ 4 GB (MB; serve, else loaded process)", serve_1m, 4096.0, False),
        ("1M ads: in-process p99 uncached ≤ 20 ms", g(r1m, "inproc", "uncached", "p99"), 20.0, False),
    ]
    if analyzer is not None or semantic:
        src = str(g(analyzer, "source") or "")
        track = "main-track" if "main" in src else (f"{Path(src).name}" if src else "")
        rows.append((f"one analyzer worker (1 encoder thread) ≥ 20 new {track} pages/s".replace("  ", " "),
                     g((g(analyzer, "drain") or [{}])[0], "pages_per_s"), 20.0, True))
    return rows


def target_rows(results: list[dict[str, Any]], analyzer: dict[str, Any] | None = None) -> list[str]:
    by = {r["size"]: r for r in results}
    b1m = g(by.get(1_000_000), "build") or {}
    rows = []
    for name, value, limit, more in targets(results, analyzer):
        failed = _build_failure(b1m, name) if name.startswith("1M ads: build") else None
        if value is not None and limit is None:
            rows.append(f"| {name} | {fmt(value)} | stated |")
        elif value is not None:
            met = "yes" if (value >= limit if more else value <= limit) else "no"
            rows.append(f"| {name} | {fmt(value)} | {met} |")
        elif failed:
            rows.append(f"| {name} | {failed} | {'no' if limit else 'stated'} |")
        elif b1m.get("failed") and name.startswith("1M ads: RSS"):
            rows.append(f"| {name} | ≥ {fmt(b1m.get('peak_rss_mb'))} when the build was stopped | unknown |")
        else:
            rows.append(f"| {name} | not measured | – |")
    return rows


def _build_failure(b1m: dict[str, Any], name: str) -> str | None:
    """Why the 1M build of target row ``name`` (cold, warm or lexical) has no time, if it failed."""
    mode = b1m.get("mode")
    b = b1m.get("cold", {}) if "cold" in name and mode == "warm" else b1m
    if "warm" in name and mode == "cold" and b1m.get("failed"):
        return "not run: the cold build failed"
    if not b.get("failed"):
        return None
    return (f"> {fmt(b.get('wall_s'))} s" if b.get("wall_s") else "") + f" ({b['failed']}{stopped_at(b)})"
