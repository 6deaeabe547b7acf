"""The report's OpenRTB bidder tables (issue 16): bid latency and throughput beside /v1/match on the
same servers (scripts/benchlib/openrtb.py)."""

from __future__ import annotations

from typing import Any

from benchlib.fmt import fmt, g, ratio, size_label


def openrtb_rows(ok: list[dict[str, Any]]) -> list[str]:
    runs = [r for r in ok if r.get("openrtb")]
    if not runs:
        return []
    L = ["", "## OpenRTB bidder", "", "`POST /openrtb2/bid` (issue 16), `tmax` 200, one 300×250 imp with floor 0, "
         "title + the page's 8 top jieba keywords, billing on (budget states read; no impression counted on a bid). "
         "Before timing, each page's URL is stored by the background fetcher from a page server on 127.0.0.1 "
         "(allowlisted for this; nothing else may be fetched), by a server run for that alone; the timed servers run "
         "with `ADMATCH_FETCH_ENABLED=false`, so no fetch runs while anything is timed. 1 worker, sequential on one "
         "keep-alive connection: *cached page*: `site.page` a stored URL, requested before (its ranking in the page "
         "cache), from wrk (`-t1 -c1`) and httpx; *unseen URL*: the same titles and keywords under a URL never seen "
         "(page cache miss: analysed and ranked from the request); *no URL*: title and keywords alone, each page's "
         "first request. The peer is `/v1/match` on the same server and pages in the same run (the http phase's "
         "measurement: cached pages from wrk, fresh URLs from httpx), and `/v1/match` with the page text replaced by the "
         "same keywords under fresh URLs (the short page a title + keywords bid request ranks: both encode it inline "
         "with the sentence encoder). *bid share*: requests answered with a bid (the "
         "rest 204).", "",
         "| ads | cached page (wrk) p50 | p99 | cached page (httpx) p50 | p99 | /v1/match cached (wrk) p99 | "
         "unseen URL p50 | p99 | no URL p50 | p99 | /v1/match fresh p99 | /v1/match fresh, title + keywords p50 | "
         "p99 | bid share cached / unseen / no URL | non-2xx |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        o = r["openrtb"]
        if o.get("failed"):
            L.append(f"| {size_label(r['size'])} | {o['failed']} |" + " – |" * 13)
            continue
        lat, peer, short = o.get("latency") or {}, o.get("peer_latency") or {}, o.get("peer_latency_short") or {}
        cw, c, u, n = (lat.get(k) or {} for k in ("cached_wrk", "cached", "unseen_url", "no_url"))
        shares = " / ".join(fmt(x.get("bid_share"), 2) for x in (c, u, n))
        bad = sum(x.get("non_2xx") or 0 for x in (cw, c, u, n))
        L.append(f"| {size_label(r['size'])} | {fmt(cw.get('p50_ms'))} | {fmt(cw.get('p99_ms'))} | "
                 f"{fmt(c.get('p50'))} | {fmt(c.get('p99'))} | {fmt(g(peer, 'cached_wrk', 'p99_ms'))} | "
                 f"{fmt(u.get('p50'))} | {fmt(u.get('p99'))} | {fmt(n.get('p50'))} | {fmt(n.get('p99'))} | "
                 f"{fmt(g(peer, 'fresh', 'p99'))} | {fmt(g(short, 'fresh', 'p50'))} | {fmt(g(short, 'fresh', 'p99'))} | "
                 f"{shares} | {fmt(bad)} |")
    L += ["", "Throughput: `admatch serve --workers 2` (fetcher off), cached-page bid requests, then `/v1/match` "
          "cached pages on the same server, each from one load-generator thread on the same CPUs.", "",
          "| ads | tool | connections | s | bid requests/s | p50 | p99 | /v1/match matches/s | bid ÷ match | "
          "non-2xx | errors |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        o = r["openrtb"]
        ld, pl = o.get("load") or {}, o.get("peer_load") or {}
        if o.get("failed") or not ld:
            continue
        L.append(f"| {size_label(r['size'])} | {ld.get('tool', '–')} | {fmt(ld.get('connections'))} | "
                 f"{fmt(ld.get('seconds'), 1)} | {fmt(ld.get('rps'), 0)} | {fmt(ld.get('p50_ms'))} | "
                 f"{fmt(ld.get('p99_ms'))} | {fmt(pl.get('rps'), 0)} | {ratio(ld.get('rps'), pl.get('rps'))} | "
                 f"{fmt(ld.get('non_2xx'))} | {fmt(ld.get('errors'))} |")
    return L


def openrtb_targets(r100: dict[str, Any]) -> list[tuple[str, Any, float | None, bool]]:
    """The issue's three OpenRTB targets at 100k ads (rows of :func:`benchlib.targets.targets`)."""
    lat = g(r100, "openrtb", "latency") or {}
    cached = g(lat, "cached_wrk", "p99_ms") or g(lat, "cached", "p99")
    kw = [x for x in (g(lat, "unseen_url", "p99"), g(lat, "no_url", "p99")) if x is not None]
    return [
        ("100k ads: OpenRTB p99 of a bid request whose page is cached ≤ 10 ms", cached, 10.0, False),
        ("100k ads: OpenRTB p99 of a bid request with title and keywords only (the slower of unseen URL and "
         "no URL) ≤ 20 ms", max(kw) if kw else None, 20.0, False),
        ("100k ads: ≥ 1,000 bid requests/s on 2 workers (cached pages, billing on)",
         g(r100, "openrtb", "load", "rps"), 1000.0, True),
    ]
