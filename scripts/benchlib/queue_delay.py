"""The throughput run with one ``admatch analyzer`` worker beside the 2-worker server, and the
queue delay of fresh pages under that load (issue 13): part of the http phase."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchlib.common import PUBLISHER_KEY, free_port, pct, proc_status, say
from benchlib.http import drive, match_body, wire_bodies

POLL_S = 0.05  # how often the profile keys of the fresh pages are looked for in Redis


@contextmanager
def analyzer_process(env: dict[str, str], log: Path, metrics_port: int, ready_timeout: float) -> Iterator[int]:
    """One ``admatch analyzer`` worker (1 encoder thread, the default) against the bench's Valkey,
    yielded (its pid) once it logged that it is ready; stopped with SIGTERM (it finishes its batch)."""
    cmd = [sys.executable, "-m", "service.cli", "analyzer", "--consumer", "bench", "--metrics-port", str(metrics_port)]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                cwd=env["ADMATCH_DATA_DIR"])
        try:
            deadline = time.monotonic() + ready_timeout
            while " ready (" not in log.read_text(errors="replace"):
                if proc.poll() is not None:
                    raise RuntimeError(f"admatch analyzer exited: {log.read_text()[-1500:]}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"admatch analyzer not ready after {ready_timeout:.0f} s")
                time.sleep(0.2)
            yield proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def worker_metrics(port: int) -> dict[str, Any]:
    """The worker's pages analysed and queue-delay histogram (cumulative buckets) from --metrics-port."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, Any] = {"pages": 0.0, "delay_sum": 0.0, "delay_count": 0.0, "buckets": {}}
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "admatch_analyzer_pages_total":
                out["pages"] = s.value
            elif s.name == "admatch_analyzer_queue_delay_seconds_sum":
                out["delay_sum"] = s.value
            elif s.name == "admatch_analyzer_queue_delay_seconds_count":
                out["delay_count"] = s.value
            elif s.name == "admatch_analyzer_queue_delay_seconds_bucket":
                out["buckets"][s.labels["le"]] = s.value
    return out


def histogram_between(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The worker's queue delays observed between two :func:`worker_metrics` readings: count, mean,
    and the bucket bounds holding the median and the 99th percentile (the histogram's resolution)."""
    n = b["delay_count"] - a["delay_count"]
    out: dict[str, Any] = {"pages": int(b["pages"] - a["pages"]), "delays": int(n),
                           "mean_s": round((b["delay_sum"] - a["delay_sum"]) / n, 3) if n else None}
    bounds = sorted(((float(le), b["buckets"][le] - a["buckets"].get(le, 0.0)) for le in b["buckets"]),
                    key=lambda x: x[0])
    for name, q in (("p50_le_s", 0.5), ("p99_le_s", 0.99)):
        out[name] = next((le for le, c in bounds if n and c >= q * n), None)
    return out


def analysis_backlog(redis_url: str) -> int:
    """Entries in the analysis stream (waiting, or read and not finished)."""
    import redis

    from service.store import keys

    with redis.Redis.from_url(redis_url) as r:
        return int(r.xlen(keys.ANALYSIS_QUEUE))


def analyzer_under_load(base: str, redis_url: str, env: dict[str, str], pages: list[dict[str, Any]],
                        fresh_pages: list[dict[str, Any]], args: argparse.Namespace, work: Path,
                        size: int) -> dict[str, Any]:
    """One ``admatch analyzer`` worker beside the 2-worker server at ``base``:

    1. it drains the backlog the earlier HTTP runs left (their first-view pages, offered to the
       queue), the servers idle;
    2. a short wrk run lets every serving process re-rank the cached pages with their profiles
       (each process looks a cached first-view page up again once a second), as in steady state;
    3. the measured run: wrk on the cached pages (as the throughput run) while fresh long pages,
       each under a new URL, are requested at ``--analyzer-rate`` a second; each response's
       arrival (the page was offered to the queue while it was answered) to the moment its
       profile key exists in Redis (``ProfileStore.key``, polled every ``POLL_S``) is its queue
       delay. The worker's own histogram (enqueue → stored) over the same run is read from its
       --metrics-port beside it."""
    import httpx
    import redis

    from matching.encoder import UniversalSentenceEncoder
    from service.analysis.profiles import ProfileStore
    from service.serving.page_cache import page_key

    out: dict[str, Any] = {}
    mport = free_port()
    with analyzer_process(env, work / f"analyzer-{size}.log", mport, 300) as pid:
        t0 = time.monotonic()
        backlog0 = left = analysis_backlog(redis_url)
        while left and time.monotonic() - t0 < args.analyzer_drain_timeout:
            time.sleep(0.5)
            left = analysis_backlog(redis_url)
        drained_s = time.monotonic() - t0
        m0 = worker_metrics(mport)
        out["backlog"] = {"pages": backlog0, "left": left, "seconds": round(drained_s, 1),
                          "pages_per_s": round(m0["pages"] / drained_s, 2) if drained_s and m0["pages"] else None}
        say(f"{size} ads: analyzer drained {backlog0 - left} of {backlog0} queued pages in {drained_s:.1f} s")
        time.sleep(1.2)  # past the serving processes' once-a-second profile recheck
        bodies = wire_bodies(pages)
        drive(base, bodies, args.connections, 3, work)  # every process re-ranks the analysed pages
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {PUBLISHER_KEY}"}, timeout=30) as c:
            analysed = sum(bool(c.post("/v1/match", content=b, headers={"Content-Type": "application/json"})
                                .json().get("page_analysed")) for b in bodies)
        out["cached_pages_analysed"] = f"{analysed}/{len(bodies)}"

        enc_name = UniversalSentenceEncoder().name  # named, not loaded
        store = ProfileStore(None, enc_name, dim=UniversalSentenceEncoder.dim, ttl_s=1)  # type: ignore[arg-type]
        sent: dict[str, float] = {}  # profile key → response received (perf_counter)
        seen: dict[str, float] = {}
        fresh_lat: list[float] = []
        errors: list[int] = []
        stop = threading.Event()
        rate, seconds = args.analyzer_rate, args.seconds

        def sender() -> None:
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {PUBLISHER_KEY}"}, timeout=30) as c:
                start = time.perf_counter()
                for i in range(int(rate * seconds)):
                    time.sleep(max(0.0, start + i / rate - time.perf_counter()))
                    p = fresh_pages[i % len(fresh_pages)]
                    url = f"https://news.example.com/analyse/{size}/{time.time_ns()}/{i}"
                    a = time.perf_counter()
                    try:
                        c.post("/v1/match", json=match_body(p, i, url=url)).raise_for_status()
                    except httpx.HTTPError:
                        errors.append(i)
                        continue
                    b = time.perf_counter()
                    fresh_lat.append(b - a)
                    sent[store.key(page_key(url=url, title=p.get("title"), text=p["text"], html=None))] = b

        def poller() -> None:
            with redis.Redis.from_url(redis_url) as r:
                while not stop.is_set() or len(seen) < len(sent):
                    todo = [k for k in list(sent) if k not in seen]
                    if todo:
                        with r.pipeline(transaction=False) as pipe:
                            for k in todo:
                                pipe.exists(k)
                            found = pipe.execute()
                        now = time.perf_counter()
                        for k, f in zip(todo, found, strict=True):
                            if f:
                                seen[k] = now
                    if stop.is_set() and time.monotonic() > give_up:
                        return
                    time.sleep(POLL_S)

        give_up = float("inf")
        threads = [threading.Thread(target=sender, daemon=True), threading.Thread(target=poller, daemon=True)]
        for th in threads:
            th.start()
        load = drive(base, bodies, args.connections, seconds, work)
        threads[0].join(seconds + 60)
        give_up = time.monotonic() + 60  # pages not analysed a minute after the run count as late
        stop.set()
        threads[1].join(90)
        m1 = worker_metrics(mport)
        out["analyzer_rss_mb"] = proc_status(pid)["rss_mb"]
    delays = [seen[k] - sent[k] for k in sent if k in seen]
    s = pct(delays)
    out["load"] = load
    out["fresh"] = {"rate_per_s": rate, "sent": len(sent), "analysed": len(delays), "late": len(sent) - len(delays),
                    "delay_p50_s": round(s["p50"] / 1000, 3) if s else None,
                    "delay_p95_s": round(s["p95"] / 1000, 3) if s else None,
                    "delay_p99_s": round(s["p99"] / 1000, 3) if s else None,
                    "delay_max_s": round(max(delays), 3) if delays else None, "poll_s": POLL_S, "errors": len(errors),
                    "request": pct(fresh_lat)}
    out["worker_histogram"] = histogram_between(m0, m1)
    return out
