"""Performance benchmark: index build, memory, match latency and throughput against catalog size,
each figure beside the same measurement of a BM25 baseline (bm25s) in the same run.

    python scripts/bench.py --sizes 1000,10000,100000 \\
        --pages ../shared/data/eval/main/pages.dev.jsonl --out docs/performance.md

For each catalog size N (synthetic Chinese ads from scripts/bench_catalog.py):

1. build   — a subprocess generates the N ads, runs ``index.builder.build`` + ``index.artifact.save``
             and reports their times; its peak RSS (VmHWM) is sampled by this process.
2. inproc  — a subprocess loads the artifact as a service does and times, per page, the uncached
             path (``make_page`` → ``Matcher.analyze`` → ``Matcher.rank``, k=30) and the cached path
             (``service.serving.placement.relevant`` on a local ``PageCache`` hit + blocked filter); checks
             FAISS recall@10 against numpy brute force; indexes the same ads with bm25s (same
             tokenizer) and times its queries.
3. http    — ``admatch serve`` subprocesses on loopback against a Valkey server started here:
             sequential /v1/match latency for repeated (cached) and fresh (new URL) pages with one
             worker, then throughput with ``--workers 2`` and cached pages under wrk (or an asyncio
             httpx client when wrk is missing), billing on: every request reads budget states and
             counts impressions in Redis.

``--phases`` runs some of them (a later phase needs the index an earlier run left in
``--workdir``). The phases live in ``scripts/benchlib`` (build, inproc, http, report); this file is
the entry point, also of the phase subprocesses (``--phase``).

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
from benchlib.http import run_http, valkey  # noqa: E402
from benchlib.inproc import phase_inproc, run_inproc  # noqa: E402
from benchlib.report import g, machine, targets, write_plot, write_report  # noqa: E402

PHASES = ("build", "inproc", "http")


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="admatch benchmark: build, memory, latency, throughput vs bm25s")
    p.add_argument("--sizes", default="1000,10000,100000", help="catalog sizes, comma-separated (default %(default)s)")
    p.add_argument("--pages", type=Path, help="JSONL of articles with a 'text' field (default: the demo pages)")
    p.add_argument("--max-pages", type=int, default=300, help="pages used for in-process latency")
    p.add_argument("--http-pages", type=int, default=100, help="distinct pages used over HTTP")
    p.add_argument("--http-fresh", type=int, default=150, help="fresh (uncached) HTTP requests per size")
    p.add_argument("--rounds", type=int, default=3, help="repetitions of the cached measurements")
    p.add_argument("--connections", type=int, default=16, help="concurrent connections of the load test")
    p.add_argument("--seconds", type=float, default=10, help="duration of the load test")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--build-timeout", type=float, default=900, help="stop a build after this many seconds")
    p.add_argument("--skip-http", action="store_true", help="in-process figures only (same as leaving http out of --phases)")
    p.add_argument("--phases", default=",".join(PHASES),
                   help="phases to run, comma-separated, of %(default)s; without build, the index and figures "
                        "of an earlier run in --workdir are used")
    p.add_argument("--profile-size", type=int, help="size to profile (default: the largest)")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "performance.md")
    p.add_argument("--plot", type=Path, help="PNG path (default: --out with .png)")
    p.add_argument("--workdir", type=Path, help="keep indexes, logs and per-size results here (default: a temporary directory)")
    p.add_argument("--resume", action="store_true",
                   help="with --workdir: keep the phases a previous run there completed, run the rest")
    p.add_argument("--report-only", action="store_true",
                   help="with --workdir: rewrite the report and plot from the results saved there, run nothing")
    p.add_argument("--phase", choices=["build", "inproc"], help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    p.add_argument("--index-dir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--pages-file", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.phase == "build":
        print(json.dumps(phase_build(args.size, args.seed, args.index_dir)), flush=True)
        return
    if args.phase == "inproc":
        print(json.dumps(phase_inproc(args.index_dir, args.pages_file, args.rounds, args.profile)), flush=True)
        return

    phases = {s.strip() for s in args.phases.split(",") if s.strip()}
    if phases - set(PHASES):
        p.error(f"unknown phase(s) {sorted(phases - set(PHASES))}; choose from {', '.join(PHASES)}")
    if args.skip_http:
        phases.discard("http")
    if "build" not in phases and not args.workdir and not args.report_only:
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
    try:
        with (valkey(work) if "http" in phases and not args.report_only else _null()) as redis_url:
            for size in ([] if args.report_only else sizes):
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
                    say(f"{size} ads: build")
                    r["build"] = run_build(size, args.seed, index_dir, args.build_timeout, work / f"build-{size}.log")
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
                if "http" in phases and not done("http"):
                    say(f"{size} ads: HTTP")
                    try:
                        r["http"] = run_http(size, index_dir, redis_url, pages, args, work)
                    except Exception as e:  # report what failed, keep the figures measured so far
                        r["http"] = {"failed": f"{type(e).__name__}: {str(e)[-800:]}"}
                    say(f"{size} ads: HTTP {r['http']}")
                if ran:  # stamp the results with when and how they were measured
                    r["measured_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
                    r["command"] = command
                saved.write_text(json.dumps(r), encoding="utf-8")
                if not args.workdir:
                    shutil.rmtree(index_dir, ignore_errors=True)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    src = str(args.pages) if args.pages else "service/demo/pages.json"
    notes = []
    if args.pages and "shared" in str(args.pages):
        src = "the shared evaluation set (" + args.pages.name + ")"
    meta = {"machine": machine(), "seed": args.seed, "pages_n": len(pages), "pages_source": src,
            "pages_mean_chars": float(np.mean([len(x["text"] or "") for x in pages])),
            "command": command, "notes": notes}
    if args.report_only:  # say when and how the figures were measured, not when the report was written
        dates = sorted({r["measured_at"] for r in results if r.get("measured_at")}) or [meta["machine"]["date"]]
        meta["machine"]["date"] = dates[0] if len(dates) == 1 else f"{dates[0]} – {dates[-1]}"
        meta["command"] = "`; `".join(dict.fromkeys(r["command"] for r in results if r.get("command")))
    plot_path = args.plot or args.out.with_suffix(".png")
    plot_path.parent.mkdir(parents=True, exist_ok=True)
    plot = write_plot(plot_path, results)
    write_report(args.out, results, meta, os.path.relpath(plot_path, args.out.parent) if plot else None)
    say(f"wrote {args.out}" + (f" and {plot_path}" if plot else ""))
    print(json.dumps({"machine": meta["machine"], "results": results,
                      "targets": [{"target": t[0], "measured": t[1]} for t in targets(results)]}, ensure_ascii=False))


@contextmanager
def _null() -> Iterator[str]:
    yield ""


if __name__ == "__main__":
    main()
