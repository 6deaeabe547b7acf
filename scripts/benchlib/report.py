"""The benchmark's report: Markdown tables, the targets and the plot."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from benchlib.common import LIBRARIES, PAGE_CHARS, K
from benchlib.fmt import fmt, g, ratio, size_label, stopped_at
from benchlib.report_openrtb import openrtb_rows
from benchlib.report_semantic import analysed_rows, analyzer_load_rows, analyzer_rows, build_rows
from benchlib.targets import target_rows


def machine() -> dict[str, Any]:
    mem = next((int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines()
                if x.startswith("MemTotal:")), 0)
    cpu = next((x.split(":", 1)[1].strip() for x in Path("/proc/cpuinfo").read_text().splitlines()
                if x.startswith("model name")), platform.processor())
    libs = {}
    for name in LIBRARIES:
        try:
            libs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            libs[name] = "-"
    wrk = shutil.which("wrk")
    wrk_v = subprocess.run([wrk, "--version"], capture_output=True, text=True).stdout.split("\n")[0] if wrk else "-"
    return {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "nproc": len(os.sched_getaffinity(0)),
            "cpu": cpu, "memory_gib": round(mem / 2**20, 1), "python": platform.python_version(),
            "os": platform.platform(), "libraries": libs, "wrk": wrk_v.strip() or "-"}



def write_report(out: Path, results: list[dict[str, Any]], meta: dict[str, Any], plot: str | None) -> None:
    L: list[str] = []
    m = meta["machine"]
    L += ["# Performance", "",
          f"Measured {m['date']} by `{meta['command']}` — {m['nproc']} CPUs ({m['cpu']}), "
          f"{m['memory_gib']} GiB memory, Python {m['python']}, {m['os']}.", "",
          "1-minute load average when each phase started: " + "; ".join(
              f"{size_label(r['size'])} " + ", ".join(f"{k} {v}" for k, v in r.get("loadavg", {}).items())
              for r in results)
          + ". Above the CPU count, other processes shared the CPUs and wall-clock figures are inflated; CPU "
          "columns are less affected.", "",
          "Libraries: " + ", ".join(f"{k} {v}" for k, v in m["libraries"].items()) + f"; load generator: {m['wrk']}.",
          "",
          f"Catalogs: synthetic Chinese ads from jieba's dictionary (`scripts/bench_catalog.py`, seed {meta['seed']}). "
          f"Pages: {meta['pages_n']} real articles from {meta['pages_source']}, first {PAGE_CHARS} characters "
          f"(mean {meta['pages_mean_chars']:.0f}). Times in ms unless marked; ratios are admatch ÷ bm25s measured in "
          "the same run (bm25s indexes title + keywords tokenised by the same `matching.tokenize.Tokenizer`, top-30; "
          "its query time includes normalising and tokenising the page, like admatch's).", ""]
    if plot:
        L += [f"![latency p99 and memory against catalog size]({plot})", ""]
    ok = [r for r in results if not r.get("build", {}).get("failed")]

    L += ["## Index build", "", "`index.builder.build` + `index.artifact.save` in a subprocess; peak RSS is its "
          "VmHWM (includes the generated ads list, as a real build holds the catalog read from Redis). Large "
          "builds segment and encode in forked worker processes: *CPU s* includes theirs, *worker peak* is the largest "
          "worker's VmHWM (pages shared with the build process count in both). With the semantic signal "
          "(`ADMATCH_SEMANTIC`, the default) each row is the *warm* rebuild: the ads' sentence-encoder vectors read "
          "from the vector cache the cold build left (*vectors s*: cache read and rewrite), as the nightly build of "
          "an unchanged catalog; the cold build is in the next table. *total s* = vectors + build + save.", "",
          "| ads | vectors s | build s | save s | total s | CPU s | bm25s tokenise + index s | × bm25s | peak RSS MB | "
          "worker peak RSS MB | vocabulary | index on disk MB |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        b, bm = r["build"], g(r, "inproc", "bm25s")
        if b.get("failed"):
            L.append(f"| {size_label(r['size'])} | {b['failed']}{stopped_at(b)} | – | – | – | – | – | – | "
                     f"{fmt(b.get('peak_rss_mb'))} | – | – | – |")
            continue
        L.append(f"| {size_label(r['size'])} | {fmt(g(b, 'vectors', 'vectors_s'))} | {fmt(b['build_s'])} | "
                 f"{fmt(b['save_s'])} | {fmt(b['total_s'])} | "
                 f"{fmt(b.get('cpu_s'))} | {fmt(g(bm, 'total_s'))} | {ratio(b['total_s'], g(bm, 'total_s'))} | {fmt(b['peak_rss_mb'])} | "
                 f"{fmt(b.get('workers_peak_rss_mb') or None)} | "
                 f"{fmt(b['vocabulary'])} | {fmt(b['disk_mb'], 1)} |")


    L += build_rows(results)


    L += ["", "## Memory", "", "RSS in MB. *Loaded*: a fresh process after `index.artifact.load` (and its growth "
          "over the imports; with the semantic signal the index holds the ads' int8 rows, *semantic rows*); *+ encoder*: "
          "the same process after loading the sentence encoder (as every serving process does in the background at "
          "start, for short pages; its growth in brackets); *serve*: the `admatch serve` process (1 worker, encoder "
          "loaded) after the latency runs; *2 workers*: each worker of `--workers 2` after the load test; *analyzer*: "
          "the `admatch analyzer` worker after its run (no index, the encoder); bm25s: growth of the process by its "
          "index.", "",
          "| ads | loaded process | index share | × bm25s | semantic rows | + encoder | serve, 1 worker | 2 workers | "
          "analyzer | bm25s index |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for r in ok:
        i = r.get("inproc", {})
        an = i.get("analysed") or {}
        enc = (f"{an['rss_with_encoder_mb']:,} (+{an['encoder_rss_mb']:,})" if an.get("rss_with_encoder_mb") else "–")
        L.append(f"| {size_label(r['size'])} | {fmt(i.get('rss_loaded_mb'))} | {fmt(i.get('index_rss_mb'))} | "
                 f"{ratio(i.get('index_rss_mb'), g(i, 'bm25s', 'rss_mb'))} | {fmt(i.get('semantic_rows_mb'), 1)} | {enc} | "
                 f"{fmt(g(r, 'http', 'serve_rss_mb'))} | "
                 f"{' + '.join(f'{x:,}' for x in g(r, 'http', 'workers_rss_mb') or []) or '–'} | "
                 f"{fmt(g(r, 'http', 'analyzer', 'analyzer_rss_mb'))} | {fmt(g(i, 'bm25s', 'rss_mb'))} |")

    L += ["", "## In-process match latency", "", f"Per page, k={K}. *Uncached*: `make_page` + `Matcher.analyze` + "
          "`Matcher.rank`; *cached*: `service.serving.placement.relevant` on a local `PageCache` hit plus the blocked filter "
          "(1% of campaigns paused), page key included. Thread settings as `admatch serve` runs them "
          "(`service.app.serving_threads`: FAISS on one OpenMP thread). Stage columns are medians; *CPU p50* is the process CPU "
          "time of an uncached match (all threads), less sensitive than wall time to other load on the machine.", "",
          "| ads | uncached p50 | p95 | p99 | p99 × bm25s | CPU p50 | make_page | analyze | rank | cached p50 | p95 | "
          "p99 | p99 × bm25s | results/page |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in ok:
        i = r.get("inproc", {})
        u, c, s = i.get("uncached", {}), i.get("cached", {}), i.get("stage_p50_ms", {})
        bq = g(i, "bm25s", "query", "p99")
        L.append(f"| {size_label(r['size'])} | {fmt(u.get('p50'))} | {fmt(u.get('p95'))} | {fmt(u.get('p99'))} | "
                 f"{ratio(u.get('p99'), bq)} | {fmt(g(i, 'uncached_cpu', 'p50'))} | {fmt(s.get('make_page'))} | {fmt(s.get('analyze'))} | {fmt(s.get('rank'))} | "
                 f"{fmt(c.get('p50'), 4)} | {fmt(c.get('p95'), 4)} | {fmt(c.get('p99'), 4)} | {ratio(c.get('p99'), bq)} | "
                 f"{fmt(i.get('results_mean'), 1)} |")

    L += analysed_rows(ok)


    L += ["", "## bm25s peer", "", "| ads | tokenise s | index s | query p50 | p95 | p99 | retrieve only p50 | p99 |",
          "|---|---|---|---|---|---|---|---|"]
    for r in ok:
        bm = g(r, "inproc", "bm25s") or {}
        q, ro = bm.get("query", {}), bm.get("retrieve_only", {})
        L.append(f"| {size_label(r['size'])} | {fmt(bm.get('tokenize_s'))} | {fmt(bm.get('index_s'))} | "
                 f"{fmt(q.get('p50'))} | {fmt(q.get('p95'))} | {fmt(q.get('p99'))} | {fmt(ro.get('p50'))} | "
                 f"{fmt(ro.get('p99'))} |")

    L += ["", "## Dense search (FAISS) against brute force", "", "recall@10 of the FAISS index the service loads "
          "against exact inner products in numpy, over the pages' query vectors; search times at the matcher's "
          "candidate depth (200), with FAISS's default OpenMP threads and with one thread (as the service and the latency figures above run it).", "",
          "| ads | index | recall@10 | FAISS p50 | p99 | OpenMP threads | FAISS 1 thread p50 | p99 | numpy p50 | p99 |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for r in ok:
        f = g(r, "inproc", "faiss") or {}
        L.append(f"| {size_label(r['size'])} | {f.get('index', '–')} | {fmt(f.get('recall_at_10'), 4)} | "
                 f"{fmt(g(f, 'search_k_cand', 'p50'))} | {fmt(g(f, 'search_k_cand', 'p99'))} | {fmt(f.get('omp_threads'))} | "
                 f"{fmt(g(f, 'search_1_thread', 'p50'))} | {fmt(g(f, 'search_1_thread', 'p99'))} | "
                 f"{fmt(g(f, 'numpy_k_cand', 'p50'))} | {fmt(g(f, 'numpy_k_cand', 'p99'))} |")

    queue_on = any(g(r, "http", "semantic") for r in ok)
    L += ["", "## Over HTTP", "", "`admatch serve` (1 worker) on loopback with Valkey, sequential requests on one "
          "keep-alive connection, 3 slots, a `user_key`, billing on (budget states read, impressions "
          "counted). *Cached*: pages requested before, from wrk (`-t1 -c1`, a client in C, for 10 s) and from "
          "httpx (whose own time, about 0.5 ms a request, is included); *fresh*: the same articles under a URL "
          "never seen (httpx). " + (
              "These are the request-path latencies with the analysis queue on, as `admatch serve` "
              "runs by default: every page ranked on its first view is offered to the queue (`AnalysisQueue.offer`, "
              "flushed to Redis every 0.1 s) and cached first-view pages look for their profile once a second; no "
              "analyzer worker runs here, so every page is ranked on its first view." if queue_on else
              "Served with `ADMATCH_SEMANTIC=false` (`--no-semantic`): no encoder, no analysis queue."), "",
          "| ads | cached (wrk) p50 | p95 | p99 | p99 × bm25s | cached (httpx) p50 | p99 | fresh p50 | p95 | p99 | "
          "p99 × bm25s | ads/response |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in ok:
        lat = g(r, "http", "latency") or {}
        c, f, w = lat.get("cached", {}), lat.get("fresh", {}), lat.get("cached_wrk", {})
        bq = g(r, "inproc", "bm25s", "query", "p99")
        L.append(f"| {size_label(r['size'])} | {fmt(w.get('p50_ms'))} | {fmt(w.get('p95_ms'))} | "
                 f"{fmt(w.get('p99_ms'))} | {ratio(w.get('p99_ms'), bq)} | {fmt(c.get('p50'))} | {fmt(c.get('p99'))} | "
                 f"{fmt(f.get('p50'))} | {fmt(f.get('p95'))} | {fmt(f.get('p99'))} | "
                 f"{ratio(f.get('p99'), bq)} | {fmt(c.get('ads_per_response'))} |")

    L += ["", "## Throughput", "", "`admatch serve --workers 2`, cached pages, billing on, "
          + ("analysis queue on (no worker), " if queue_on else "") + "keep-alive connections from one "
          "load-generator thread on the same CPUs (it competes with the server and Valkey).", "",
          "| ads | tool | connections | s | requests | matches/s | × bm25s queries/s (1 core) | p50 | p90 | p99 | non-2xx | errors |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    tnotes: list[str] = []
    for r in ok:
        ld = g(r, "http", "load") or {}
        if ld.get("failed"):
            L.append(f"| {size_label(r['size'])} | {ld['failed']} |" + " – |" * 10)
            continue
        bq = g(r, "inproc", "bm25s", "query", "mean")
        L.append(f"| {size_label(r['size'])} | {ld.get('tool', '–')} | {fmt(ld.get('connections'))} | "
                 f"{fmt(ld.get('seconds'), 1)} | {fmt(ld.get('requests'))} | {fmt(ld.get('rps'), 0)} | "
                 f"{ratio(ld.get('rps'), 1000 / bq if bq else None)} | {fmt(ld.get('p50_ms'))} | {fmt(ld.get('p90_ms'))} | "
                 f"{fmt(ld.get('p99_ms'))} | {fmt(ld.get('non_2xx'))} | {fmt(ld.get('errors'))} |")
        if ld.get("note"):
            tnotes.append(f"{size_label(r['size'])}: {ld['note']}; measured with `{ld['server']}` instead.")

    if tnotes:
        L += [""] + [f"- {n}" for n in tnotes]
    L += analyzer_load_rows(ok)
    L += openrtb_rows(ok)
    L += analyzer_rows(meta.get("analyzer"))
    L += ["", "## Against the targets", "", "| target | measured | met |", "|---|---|---|"]
    L += target_rows(results, meta.get("analyzer"))

    prof_r = next((r for r in reversed(ok) if g(r, "inproc", "profile")), None)
    if prof_r:
        L += ["", f"## Where a match's time goes ({size_label(prof_r['size'])} ads)", "",
              "cProfile of `Matcher.analyze` + `Matcher.rank` over 60 pages (profiling inflates Python-level "
              "calls; use the shares, not the absolute times).", "",
              "| function | calls/match | own ms/match | cumulative ms/match | share of own time |", "|---|---|---|---|---|"]
        for p in prof_r["inproc"]["profile"]:
            L.append(f"| `{p['function']}` | {fmt(p['calls_per_match'], 1)} | {fmt(p['own_ms_per_match'], 3)} | "
                     f"{fmt(p['cum_ms_per_match'], 3)} | {p['own_share']:.0%} |")
    fails = [(size_label(r["size"]) + " " + name, g(r, *path)) for r in results
             for name, path in (("build", ("build", "failed")), ("cold build", ("build", "cold", "failed")),
                                ("inproc", ("inproc", "failed")), ("http", ("http", "failed")),
                                ("openrtb", ("openrtb", "failed")),
                                ("throughput with the analyzer", ("http", "analyzer", "failed")))
             if g(r, *path)]
    if g(meta.get("analyzer"), "failed"):
        fails.append(("analyzer", meta["analyzer"]["failed"]))
    if fails:
        L += ["", "## Not measured", ""] + [f"- {what}: {why}" for what, why in fails]
    if meta.get("notes"):
        L += ["", "## Notes", ""] + [f"- {n}" for n in meta["notes"]]
    L += ["", "Reproduce: `pip install -e '.[dev,bench]'`, `apt-get install wrk` (optional), then "
          "the command above. Raw figures: the JSON line the script prints last.", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(L), encoding="utf-8")


def write_plot(path: Path, results: list[dict[str, Any]]) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed, so no plot was drawn: pip install matplotlib", file=sys.stderr)
        return None
    ok = [r for r in results if g(r, "inproc", "uncached")]
    if not ok:
        return None
    xs = [r["size"] for r in ok]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    series = [("in-process uncached", ("inproc", "uncached", "p99"), "o-"),
              ("in-process cached", ("inproc", "cached", "p99"), "s-"),
              ("HTTP cached (wrk)", ("http", "latency", "cached_wrk", "p99_ms"), "^-"),
              ("HTTP cached (httpx)", ("http", "latency", "cached", "p99"), "<-"),
              ("HTTP fresh", ("http", "latency", "fresh", "p99"), "v-"),
              ("in-process, stored page vector", ("inproc", "analysed", "stored", "p99"), "D-"),
              ("in-process, short page inline", ("inproc", "analysed", "short", "inline", "p99"), "P-"),
              ("bm25s query", ("inproc", "bm25s", "query", "p99"), "x--")]
    for label, path_, style in series:
        ys = [g(r, *path_) for r in ok]
        pts = [(x, y) for x, y in zip(xs, ys, strict=True) if y]
        if pts:
            ax1.plot(*zip(*pts, strict=True), style, label=label)
    for y, lab in ((15, "target uncached 15 ms"), (3, "target HTTP cached 3 ms"), (2, "target cached 2 ms")):
        ax1.axhline(y, color="grey", ls=":", lw=1)
        ax1.text(xs[0], y * 1.06, lab, fontsize=7, color="grey")
    ax1.set(xscale="log", yscale="log", xlabel="ads in catalog", ylabel="p99 latency (ms)", title="Match latency p99")
    ax1.legend(fontsize=8)
    mem = [("build peak", ("build", "peak_rss_mb"), "o-"), ("loaded process", ("inproc", "rss_loaded_mb"), "s-"),
           ("loaded + encoder", ("inproc", "analysed", "rss_with_encoder_mb"), "D-"),
           ("serve (1 worker)", ("http", "serve_rss_mb"), "^-"), ("bm25s index", ("inproc", "bm25s", "rss_mb"), "x--")]
    for label, path_, style in mem:
        ys = [g(r, *path_) for r in ok]
        pts = [(x, y) for x, y in zip(xs, ys, strict=True) if y]
        if pts:
            ax2.plot(*zip(*pts, strict=True), style, label=label)
    ax2.axhline(4096, color="grey", ls=":", lw=1)
    ax2.text(xs[0], 4096 * 1.06, "target 1M ads: 4 GB", fontsize=7, color="grey")
    ax2.set(xscale="log", yscale="log", xlabel="ads in catalog", ylabel="resident memory (MB)", title="Memory")
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name

