"""Performance benchmark: index build, memory, match latency and throughput against catalog size,
each figure beside the same measurement of a BM25 baseline (bm25s) in the same run; and the
sentence encoder's costs (issue 13): ads encoded at build, pages ranked with their vectors, the
page analyzer's throughput and queue delay.

    python scripts/bench.py --sizes 1000,10000,100000 \\
        --pages ../shared/data/eval/main/pages.dev.jsonl --out docs/performance.md

For each catalog size N (synthetic Chinese ads from scripts/bench_catalog.py):

1. build   — a subprocess generates the N ads, finds their sentence-encoder vectors as
             ``service.serving.indexing.catalog_vectors`` does (the vector cache under the index
             root, the rest encoded by ``index.encoding.encode_texts``), runs ``index.builder.build``
             + ``index.artifact.save`` and reports their times; its peak RSS (VmHWM) is sampled by
             this process. Twice: from an empty vector cache (cold: every ad text encoded), then in
             a second subprocess over the same ads reading the cache (warm: what a nightly rebuild
             of an unchanged catalog does; its index is the one measured below). ``--no-semantic``:
             one build without vectors (the lexical index of before issue 13).
2. inproc  — a subprocess loads the artifact as a service does and times, per page, the uncached
             first-view path (``make_page`` → ``Matcher.analyze`` → ``Matcher.rank``, k=30) and the
             cached path (``service.serving.placement.relevant`` on a local ``PageCache`` hit +
             blocked filter); checks FAISS recall@10 against numpy brute force; with the semantic
             rows, loads the encoder (its memory) and times the analysed path (the page's vector
             computed before the timed loop with ``page_vector``, as a worker's stored profile) and
             the inline short-page path (title + first sentence, ≤ 160 characters, encoded and
             ranked in the request), each beside the same pages' first view; indexes the same ads
             with bm25s (same tokenizer) and times its queries.
3. http    — ``admatch serve`` subprocesses on loopback against a Valkey server started here, as
             configured by default (pages ranked on first view are offered to the analysis queue):
             sequential /v1/match latency for repeated (cached) and fresh (new URL) pages with one
             worker, then throughput with ``--workers 2`` and cached pages under wrk (or an asyncio
             httpx client when wrk is missing), billing on: every request reads budget states and
             counts impressions in Redis. Then one ``admatch analyzer`` worker is started beside the
             2-worker server: it drains the queue those runs filled, and the throughput run is
             repeated while fresh long pages are requested at ``--analyzer-rate`` a second; the
             delay from each response to its profile in Redis is the queue delay under load.
4. openrtb — the OpenRTB bidder (issue 16), ``POST /openrtb2/bid`` with ``tmax`` 200: the pages'
             URLs stored by the background fetcher from a page server on 127.0.0.1 (the only host
             it may fetch from), then p50/p99 of bid requests for a cached page and for title and
             keywords only (unseen URL, no URL) on 1 worker with the fetcher off, and bid requests a
             second on 2 workers; /v1/match measured on the same servers and pages as the peer
             (``scripts/benchlib/openrtb.py``).

Once per run (not per size):

5. analyzer — a subprocess with its own embedded Valkey: one single-thread worker drains
             ``--analyzer-pages`` whole --pages articles (pages analysed a second per worker), the
             cost of ``AnalysisQueue.offer``, and a same-run float32 GEMM baseline with the ceiling
             of pages a second per core it implies (``scripts/benchlib/analyzer.py``, shared with
             ``scripts/bench_analyzer.py``).

``--phases`` runs some of them (a later phase needs the index an earlier run left in
``--workdir``). The phases live in ``scripts/benchlib`` (build, inproc, http with
``queue_delay``, openrtb, analyzer, report with ``report_semantic``, ``targets`` and ``fmt``);
this file is the entry point, also of the phase subprocesses (``--phase``).

Writes Markdown tables to --out, a plot next to it (.png; needs matplotlib, imported lazily), and
prints one JSON line with every figure on stdout. Everything is bounded in count and time and
only talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib.build import phase_build, run_build  # noqa: E402
from benchlib.common import REPO, load_pages, say  # noqa: E402
from benchlib.fmt import g  # noqa: E402
from benchlib.http import run_http, valkey  # noqa: E402
from benchlib.inproc import phase_inproc, run_inproc  # noqa: E402
from benchlib.openrtb import run_openrtb  # noqa: E402
from benchlib.report import machine, write_plot, write_report  # noqa: E402
from benchlib.targets import targets  # noqa: E402

PHASES = ("build", "inproc", "http", "openrtb", "analyzer")
SIZED = ("build", "inproc", "http", "openrtb")  # run for each catalog size; the analyzer phase runs once


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="admatch benchmark: build, memory, latency, throughput vs bm25s; the sentence "
                                "encoder's costs and the page analyzer")
    p.add_argument("--sizes", default="1000,10000,100000", help="catalog sizes, comma-separated (default %(default)s)")
    p.add_argument("--pages", type=Path, help="JSONL of articles with a 'text' field (default: the demo pages)")
    p.add_argument("--max-pages", type=int, default=300, help="pages used for in-process latency")
    p.add_argument("--http-pages", type=int, default=100, help="distinct pages used over HTTP")
    p.add_argument("--http-fresh", type=int, default=150, help="fresh (uncached) HTTP requests per size")
    p.add_argument("--rounds", type=int, default=3, help="repetitions of the cached measurements")
    p.add_argument("--connections", type=int, default=16, help="concurrent connections of the load test")
    p.add_argument("--seconds", type=float, default=10, help="duration of the load test")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--build-timeout", type=float, default=900,
                   help="stop a build after this many seconds, each of the cold and the warm build (a cold "
                        "build encodes every ad text: at 1M ads allow 3600)")
    p.add_argument("--no-semantic", action="store_true",
                   help="build without the sentence encoder's vectors (the lexical index before issue 13), "
                        "once; default: a cold build (every ad text encoded) then a warm rebuild from the "
                        "vector cache, and the analysed-page timings")
    p.add_argument("--skip-http", action="store_true", help="in-process figures only (same as leaving http and openrtb out of --phases)")
    p.add_argument("--phases", default=",".join(PHASES),
                   help="phases to run, comma-separated, of %(default)s; without build, the index and figures "
                        "of an earlier run in --workdir are used")
    p.add_argument("--analyzer-rate", type=float, default=5.0,
                   help="http phase: fresh long pages requested a second while the throughput load runs, with one "
                        "`admatch analyzer` worker beside the server, for the queue delay (default %(default)s; "
                        "0: no worker)")
    p.add_argument("--analyzer-drain-timeout", type=float, default=300,
                   help="http phase: longest wait for the worker to empty the queue the earlier runs filled")
    p.add_argument("--analyzer-pages", type=int, default=300,
                   help="analyzer phase: whole --pages articles one worker drains (pages analysed a second)")
    p.add_argument("--analyzer-batch", type=int, default=16, help="analyzer phase: pages a worker reads at once")
    p.add_argument("--profile-size", type=int, help="size to profile (default: the largest)")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "performance.md")
    p.add_argument("--plot", type=Path, help="PNG path (default: --out with .png)")
    p.add_argument("--workdir", type=Path, help="keep indexes, logs and per-size results here (default: a temporary directory)")
    p.add_argument("--resume", action="store_true",
                   help="with --workdir: keep the phases a previous run there completed, run the rest")
    p.add_argument("--report-only", action="store_true",
                   help="with --workdir: rewrite the report and plot from the results saved there, run nothing")
    p.add_argument("--phase", choices=["build", "inproc", "analyzer"], help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    p.add_argument("--index-dir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--pages-file", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.phase == "build":
        print(json.dumps(phase_build(args.size, args.seed, args.index_dir, not args.no_semantic)), flush=True)
        return
    if args.phase == "inproc":
        print(json.dumps(phase_inproc(args.index_dir, args.pages_file, args.rounds, args.profile)), flush=True)
        return
    if args.phase == "analyzer":
        from benchlib.analyzer import phase_analyzer

        print(json.dumps(phase_analyzer(args.pages, args.analyzer_pages, args.analyzer_batch)), flush=True)
        return

    phases = {s.strip() for s in args.phases.split(",") if s.strip()}
    if phases - set(PHASES):
        p.error(f"unknown phase(s) {sorted(phases - set(PHASES))}; choose from {', '.join(PHASES)}")
    if args.skip_http:
        phases.discard("http")
        phases.discard("openrtb")
    if phases & {"inproc", "http", "openrtb"} and "build" not in phases and not args.workdir and not args.report_only:
        p.error("without the build phase, --workdir must name an earlier run's directory")
    sizes = [int(float(s)) for s in args.sizes.split(",") if s.strip()]
    pages = load_pages(args.pages, args.max_pages)
    if not pages:
        sys.exit("no pages to match")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="admatch-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    pages_file = work / "pages.json"
    pages_file.write_text(json.dumps(pages, ensure_ascii=False), encoding="utf-8")
    profile_size = args.profile_size or max(sizes)
    command = "python scripts/bench.py " + " ".join(
        (os.path.relpath(a, REPO) if a.startswith(str(REPO.parent)) else a) for a in (argv or sys.argv[1:]))
    results: list[dict[str, Any]] = []
    if args.report_only:
        if not args.workdir:
            sys.exit("--report-only needs the --workdir of an earlier run")
        results = [json.loads((work / f"result-{n}.json").read_text(encoding="utf-8")) for n in sizes
                   if (work / f"result-{n}.json").exists()]
    analyzer: dict[str, Any] | None = None
    analyzer_saved = work / "result-analyzer.json"
    if analyzer_saved.exists() and (args.report_only or args.resume or "analyzer" not in phases):
        analyzer = json.loads(analyzer_saved.read_text(encoding="utf-8"))
    try:
        with (valkey(work) if phases & {"http", "openrtb"} and not args.report_only else _null()) as redis_url:
            for size in ([] if args.report_only or not phases & set(SIZED) else sizes):
                saved = work / f"result-{size}.json"
                r: dict[str, Any] = {"size": size}
                if (args.resume or "build" not in phases) and saved.exists():
                    r = json.loads(saved.read_text(encoding="utf-8"))
                results.append(r)
                index_dir = work / f"index-{size}"

                ran: list[str] = []

                def done(part: str) -> bool:
                    if args.resume and part in r and not r[part].get("failed"):  # noqa: B023
                        return True
                    ran.append(part)  # noqa: B023
                    r.setdefault("loadavg", {})[part] = round(os.getloadavg()[0], 2)  # noqa: B023
                    return False

                if "build" not in phases and not g(r, "build", "build_s"):
                    say(f"{size} ads: no earlier build in {work}, skipped")
                    results.pop()
                    continue
                if "build" in phases and not done("build"):
                    shutil.rmtree(index_dir, ignore_errors=True)
                    r.pop("inproc", None)
                    r.pop("http", None)
                    r.pop("openrtb", None)
                    say(f"{size} ads: build")
                    r["build"] = run_build(size, args.seed, index_dir, args.build_timeout, work / f"build-{size}.log",
                                           semantic=not args.no_semantic)
                    say(f"{size} ads: build {r['build']}")
                    saved.write_text(json.dumps(r), encoding="utf-8")
                if r["build"].get("failed"):
                    continue
                if "inproc" in phases and not done("inproc"):
                    say(f"{size} ads: in-process latency, FAISS recall, bm25s")
                    r["inproc"] = run_inproc(index_dir, pages_file, args.rounds, size == profile_size,
                                             work / f"inproc-{size}.log", timeout=1800 + size / 200)
                    say(f"{size} ads: in-process uncached {g(r, 'inproc', 'uncached')} cached {g(r, 'inproc', 'cached')}")
                    saved.write_text(json.dumps(r), encoding="utf-8")
                for part, label, run in (("http", "HTTP", run_http), ("openrtb", "OpenRTB bidder", run_openrtb)):
                    if part in phases and not done(part):
                        say(f"{size} ads: {label}")
                        try:
                            r[part] = run(size, index_dir, redis_url, pages, args, work)
                        except Exception as e:  # report what failed, keep the figures measured so far
                            r[part] = {"failed": f"{type(e).__name__}: {str(e)[-800:]}"}
                        say(f"{size} ads: {label} {r[part]}")
                        saved.write_text(json.dumps(r), encoding="utf-8")
                if ran:  # stamp the results with when and how they were measured
                    r["measured_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
                    r["command"] = command
                saved.write_text(json.dumps(r), encoding="utf-8")
                if not args.workdir:
                    shutil.rmtree(index_dir, ignore_errors=True)
        if "analyzer" in phases and not args.report_only and not (args.resume and analyzer and not analyzer.get("failed")):
            from benchlib.analyzer import run_analyzer

            say(f"page analyzer: {args.analyzer_pages} pages drained by one worker")
            load = round(os.getloadavg()[0], 2)
            analyzer = run_analyzer(args.pages, args.analyzer_pages, args.analyzer_batch, work / "analyzer.log",
                                    timeout=1800)
            analyzer.update({"loadavg": {"analyzer": load}, "command": command,
                             "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")})
            say(f"page analyzer: {g(analyzer, 'drain')}")
            analyzer_saved.write_text(json.dumps(analyzer), encoding="utf-8")
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    src = str(args.pages) if args.pages else "service/demo/pages.json"
    notes = []
    if args.pages and "shared" in str(args.pages):
        src = "the shared evaluation set (" + args.pages.name + ")"
    meta = {"machine": machine(), "seed": args.seed, "pages_n": len(pages), "pages_source": src,
            "pages_mean_chars": float(np.mean([len(x["text"] or "") for x in pages])),
            "command": command, "notes": notes, "analyzer": analyzer}
    if args.report_only:  # say when and how the figures were measured, not when the report was written
        stamped = [*results, *([analyzer] if analyzer else [])]
        dates = sorted({r["measured_at"] for r in stamped if r.get("measured_at")}) or [meta["machine"]["date"]]
        meta["machine"]["date"] = dates[0] if len(dates) == 1 else f"{dates[0]} – {dates[-1]}"
        meta["command"] = "`; `".join(dict.fromkeys(r["command"] for r in stamped if r.get("command")))
    plot_path = args.plot or args.out.with_suffix(".png")
    plot_path.parent.mkdir(parents=True, exist_ok=True)
    plot = write_plot(plot_path, results)
    write_report(args.out, results, meta, os.path.relpath(plot_path, args.out.parent) if plot else None)
    say(f"wrote {args.out}" + (f" and {plot_path}" if plot else ""))
    print(json.dumps({"machine": meta["machine"], "results": results, "analyzer": analyzer,
                      "targets": [{"target": t[0], "measured": t[1]} for t in targets(results, analyzer)]},
                     ensure_ascii=False))


@contextmanager
def _null() -> Iterator[str]:
    yield ""


if __name__ == "__main__":
    main()
