"""The openrtb phase of the benchmark (issue 16): ``POST /openrtb2/bid`` on ``admatch serve``, beside
``/v1/match`` measured on the same server, the same pages and in the same run (the peer).

1. warm   — a 1-worker server with the background fetcher on, allowed to fetch from one host only:
            a page server this process runs on 127.0.0.1, which serves each benchmark page as an
            HTML article (and a robots.txt that allows us). One bid request per page names its URL in
            ``site.page``; the fetcher (``service.openrtb.fetcher.PageFetcher``, as in production)
            fetches it after the response and stores the page by URL in Redis (``UrlPages``). The
            phase waits until every URL is stored. Nothing leaves the machine.
2. latency — a 1-worker server with the fetcher off (``ADMATCH_FETCH_ENABLED=false``: no fetch runs
            while anything is timed), sequential requests on one keep-alive connection, ``tmax`` 200:
            *cached page*: ``site.page`` a stored URL, so the page is ranked from its stored text,
            requested once before timing as a publisher's article is (the page cache then holds its
            ranking), from httpx and again from wrk on one connection; *title + keywords*: the same
            pages' titles and keywords under a URL never seen (page cache miss: analysed and ranked
            from what the request carries), and with no URL at all (each page's first request).
            Then the peer on the same server: :func:`benchlib.http.http_latency` (cached and fresh
            /v1/match, the http phase's measurement), and again with the page text replaced by the
            keywords (fresh: the same short page a title + keywords bid request ranks).
3. load   — ``--workers 2`` (fetcher off): cached-page bid requests on ``--connections`` connections
            for ``--seconds`` (wrk, else the asyncio httpx client), then the peer's
            :func:`benchlib.http.load_test` on the same server.

Every bid request has one 300×250 imp with floor 0 (every candidate is priced, so a bid is built
whenever an ad is relevant and in budget), ``cur`` CNY and ``at`` 2; title and keywords are the
page's title and its 8 top jieba TF-IDF keywords (``jieba.analyse.extract_tags``).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from benchlib.common import children, pct, proc_status, say
from benchlib.http import (
    drive,
    http_latency,
    load_redis,
    load_test,
    ready_timeout,
    run_wrk,
    serve,
    serve_env,
    serve_two_workers,
)

EXCHANGE_ID = "bench-exchange"
EXCHANGE_KEY = "bench-exchange-key"
BID_PATH = "/openrtb2/bid"  # the default ADMATCH_OPENRTB_PATH
TMAX_MS = 200
KEYWORDS = 8


def page_keywords(p: dict[str, Any]) -> list[str]:
    """The page's top TF-IDF words, as a publisher's keywords meta tag would list them."""
    import jieba.analyse

    return list(jieba.analyse.extract_tags(f"{p.get('title') or ''}\n{p['text']}", topK=KEYWORDS))


def bid_request(p: dict[str, Any], keywords: list[str], i: int, url: str | None) -> dict[str, Any]:
    site: dict[str, Any] = {"content": {"title": p.get("title") or "", "keywords": ",".join(keywords)}}
    if url:
        site["page"] = url
    return {"id": f"bench-{i}", "at": 2, "tmax": TMAX_MS, "cur": ["CNY"],
            "imp": [{"id": "1", "banner": {"w": 300, "h": 250}, "bidfloor": 0, "bidfloorcur": "CNY"}],
            "site": site}


async def register_exchange(redis_url: str, size: int) -> None:
    """The http phase's Redis state (publisher, campaigns' budgets) and one exchange, CNY, share 0.7."""
    from service.app import open_redis
    from service.openrtb.exchanges import ExchangeStore

    await load_redis(redis_url, size)
    r = open_redis(redis_url, False)
    try:
        await ExchangeStore(r).create("基准测试交易平台", "CNY", 0.7, id=EXCHANGE_ID, api_key=EXCHANGE_KEY)
    finally:
        await r.aclose()


@contextmanager
def page_server(pages: list[dict[str, Any]]) -> Iterator[str]:
    """The benchmark pages as HTML articles at ``<base>/a/<i>.html`` on 127.0.0.1, with a robots.txt
    allowing every crawler; yields the base URL."""
    docs = [(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(p.get('title') or '')}</title>"
             f"</head><body><article><p>{html.escape(p['text'])}</p></article></body></html>").encode()
            for p in pages]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body, ctype = None, "text/html; charset=utf-8"
            if self.path == "/robots.txt":
                body, ctype = b"User-agent: *\nAllow: /\n", "text/plain"
            elif self.path.startswith("/a/") and self.path.endswith(".html"):
                i = self.path[3:-5]
                if i.isdigit() and int(i) < len(docs):
                    body = docs[int(i)]
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def warm(base: str, redis_url: str, bodies: list[dict[str, Any]], timeout_s: float) -> dict[str, Any]:
    """Send each body once (its URL unknown: the server offers it to the fetcher) and wait until
    the fetcher stored every URL in Redis."""
    import httpx
    import redis

    from service.serving.url_pages import url_page_key

    t = time.perf_counter()
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {EXCHANGE_KEY}"}, timeout=30) as c:
        for b in bodies:
            c.post(BID_PATH, json=b).raise_for_status()
    keys = [url_page_key(b["site"]["page"]) for b in bodies]
    r = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + timeout_s
        while (stored := int(r.exists(*keys))) < len(keys) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        r.close()
    if stored < len(keys):
        raise TimeoutError(f"the fetcher stored {stored} of {len(keys)} pages in {timeout_s:.0f} s")
    return {"pages": len(keys), "stored": stored, "s": round(time.perf_counter() - t, 2)}


def bid_latency(c: Any, bodies: list[dict[str, Any]], rounds: int = 1) -> dict[str, Any]:
    """Each body ``rounds`` times in turn on the client's connection: p50/p95/p99, the share answered
    with a bid (200; no bid is 204), bids per bid response, and any other status."""
    times, bids, answered, other = [], [], 0, 0
    for _ in range(rounds):
        for b in bodies:
            a = time.perf_counter()
            r = c.post(BID_PATH, json=b)
            times.append(time.perf_counter() - a)
            if r.status_code == 200:
                answered += 1
                bids.append(sum(len(s.get("bid", [])) for s in r.json().get("seatbid", [])))
            elif r.status_code != 204:
                other += 1
    n = len(times)
    return {**pct(times), "bid_share": round(answered / n, 3) if n else None,
            "bids_per_response": round(float(np.mean(bids)), 2) if bids else 0, "non_2xx": other}


def openrtb_latency(base: str, known: list[dict[str, Any]], unseen: list[dict[str, Any]],
                    no_url: list[dict[str, Any]], rounds: int, seconds: float, work: Path) -> dict[str, Any]:
    import httpx

    out: dict[str, Any] = {}
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {EXCHANGE_KEY}"}, timeout=30) as c:
        bid_latency(c, known)  # each article's first bid request ranks it from its stored text
        out["cached"] = bid_latency(c, known, rounds)
        out["unseen_url"] = bid_latency(c, unseen)
        out["no_url"] = bid_latency(c, no_url)
    out["cached_wrk"] = run_wrk(base, wire(known), 1, seconds, work, BID_PATH, EXCHANGE_KEY)
    return out


def wire(bodies: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(b, ensure_ascii=True) for b in bodies]


def run_openrtb(size: int, index_dir: Path, redis_url: str, pages: list[dict[str, Any]], args: argparse.Namespace,
                work: Path) -> dict[str, Any]:
    """Warm the URL pages through the fetcher, then latency on 1 worker and throughput on 2 (module
    docstring), each beside /v1/match on the same server."""
    pages = pages[: args.http_pages]
    asyncio.run(register_exchange(redis_url, size))
    env = serve_env(redis_url, index_dir, work, args.no_semantic)
    ready = ready_timeout(size)
    kws = [page_keywords(p) for p in pages]
    out: dict[str, Any] = {"tmax_ms": TMAX_MS}
    with page_server(pages) as site:
        known = [bid_request(p, kws[i], i, f"{site}/a/{i}.html") for i, p in enumerate(pages)]
        fetch_env = {**env, "ADMATCH_FETCH_ENABLED": "true", "ADMATCH_FETCH_ALLOW_HOSTS": '["127.0.0.1"]'}
        with serve(fetch_env, 1, work / f"openrtb-warm-{size}.log", ready) as (base, _pid):
            say(f"{size} ads: OpenRTB: the fetcher stores {len(known)} pages from {site}")
            out["warm"] = warm(base, redis_url, known, 60 + len(known))
    env = {**env, "ADMATCH_FETCH_ENABLED": "false"}
    unseen = [bid_request(pages[i % len(pages)], kws[i % len(pages)], i,
                          f"https://news.example.com/openrtb/{size}/{time.time_ns()}/{i}") for i in range(args.http_fresh)]
    no_url = [bid_request(p, kws[i], i, None) for i, p in enumerate(pages)]
    with serve(env, 1, work / f"openrtb-serve1-{size}.log", ready) as (base, pid):
        say(f"{size} ads: OpenRTB latency, 1 worker, and /v1/match on the same server")
        out["latency"] = openrtb_latency(base, known, unseen, no_url, args.rounds, args.seconds, work)
        out["peer_latency"] = http_latency(base, pages, args.rounds, args.http_fresh, f"openrtb-{size}", work,
                                           args.seconds)
        # /v1/match on what a title + keywords bid request carries (a short page: encoded inline)
        short = [{"title": p.get("title"), "text": "，".join(kws[i])} for i, p in enumerate(pages)]
        out["peer_latency_short"] = http_latency(base, short, args.rounds, args.http_fresh, f"openrtb-short-{size}")
        out["serve_rss_mb"] = proc_status(pid)["rss_mb"]
    with serve_two_workers(env, work / f"openrtb-serve2-{size}.log", ready) as (base, pid, note):
        say(f"{size} ads: OpenRTB throughput, 2 workers, and /v1/match on the same server")
        import httpx

        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {EXCHANGE_KEY}"}, timeout=30) as c:
            for _ in range(3):  # every worker reads every URL page and ranks it once (local caches)
                bid_latency(c, known)
        out["load"] = {**drive(base, wire(known), args.connections, args.seconds, work, BID_PATH, EXCHANGE_KEY),
                       **note}
        out["peer_load"] = load_test(base, pages, args.connections, args.seconds, work)
        out["workers_rss_mb"] = [proc_status(c)["rss_mb"] for c in children(pid)]
    return out
