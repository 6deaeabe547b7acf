"""Benchmark: the page analyzer (not a test).

Starts a fresh embedded Valkey server in a temporary directory and measures, in one run, through
the production code (``AnalysisQueue``, ``Analyzer``, ``ProfileStore``; the measurements live in
``scripts/benchlib/analyzer.py``, shared with the analyzer phase of ``scripts/bench.py``):

* ``offer``: the request path's cost of offering a page (µs a call, p50 / p99);
* ``drain``: pages analysed per second by one worker emptying a queue holding every page, for
  each ``--threads`` value (the encoder's BLAS threads) — the per-worker throughput;
* ``rate``: the queue delay (enqueue → profile stored) p50 / p99 while pages are offered at
  ``--rate`` a second for ``--seconds`` to one worker (single-thread encoder);
* ``baseline``: float32 GEMM GFLOP/s of one BLAS thread measured in the same run, and what it
  implies: the encoder's multiply-adds per page (from the pages' token counts) divided by it is the
  ceiling of pages a second per core, which is what to compare across machines.

Pages: ``--pages`` JSON lines with ``text`` and optionally ``title`` / ``html`` (the evaluation
tracks' format), default the demo pages (service/demo/pages.json). Prints one JSON line.

    python scripts/bench_analyzer.py --pages ../shared/data/eval/main/pages.dev.jsonl [--rate 10]
        [--seconds 30] [--threads 1 [2]] [--batch 16] [--limit N] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib.analyzer import baseline, load_pages, measure, profile_encoding  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", help="JSON lines of pages (default: the demo pages)")
    ap.add_argument("--limit", type=int, help="use the first N pages only")
    ap.add_argument("--threads", type=int, nargs="+", default=[1],
                    help="encoder BLAS threads to measure (2 on a busy 2-core machine: minutes; see docs/performance.md)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rate", type=float, default=10.0, help="pages offered a second in the delay phase")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of the delay phase")
    ap.add_argument("--profile", action="store_true", help="cProfile encoding 64 pages (top functions to stderr)")
    args = ap.parse_args()
    pages = load_pages(args.pages)[:args.limit]
    base = baseline(pages)
    if args.profile:
        profile_encoding(pages)
    load_before = os.getloadavg()
    figures = measure(pages, threads=args.threads, batch=args.batch, rate=args.rate, seconds=args.seconds)
    print(json.dumps({
        "source": args.pages or "service/demo/pages.json", "pages": len(pages),
        "chars_read_per_page": base.pop("chars_read_per_page"), "tokens_per_page": base.pop("tokens_per_page"),
        **figures,
        "baseline": base,
        "machine": {"cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load_before],
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
