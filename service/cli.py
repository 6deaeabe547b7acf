"""The ``admatch`` command: serve, index build/status, demo."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence

import uvicorn
from pydantic import ValidationError

from index import artifact
from service.app import open_redis
from service.billing import ledger
from service.demo.guide import guide
from service.demo.loader import DEMO_ADMIN_KEY, load_demo
from service.serving.indexing import build_from_catalog
from service.settings import Settings
from service.store.catalog import CatalogStore
from service.store.redis_conn import redis_url

WORKER_STARTUP_SECONDS = 300


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'settings'}: {err['msg']}" for err in e.errors())
        sys.exit(f"admatch: invalid settings: {problems}")


def _serve(settings: Settings, url: str, host: str, port: int, workers: int) -> None:
    os.environ["ADMATCH_REDIS_URL"] = url  # workers (separate processes) read settings from env
    # A worker imports jieba, OpenCC and FAISS and loads the index before it answers: give it more
    # than uvicorn's 5 s, or a busy machine kills and restarts workers in a loop.
    uvicorn.run("service.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="info", access_log=settings.access_log,
                timeout_worker_healthcheck=WORKER_STARTUP_SECONDS)


async def _build(settings: Settings, url: str, progress: bool) -> artifact.Manifest:
    r = open_redis(url, settings.redis_cluster)
    try:
        return await build_from_catalog(CatalogStore(r), settings.index_root, progress=progress)
    finally:
        await r.aclose()


def cmd_serve(args: argparse.Namespace) -> None:
    s = _settings()
    with redis_url(s) as url:
        _serve(s, url, args.host or s.host, args.port or s.port, args.workers)


def cmd_index_build(args: argparse.Namespace) -> None:
    s = _settings()
    with redis_url(s) as url:
        m = asyncio.run(_build(s, url, progress=not args.quiet))
    print(f"published index version {m.version}: {m.ad_count} ads, {m.vocabulary_size} terms, "
          f"dense dim {m.dense_dim}, at {s.index_root}")


def cmd_index_status(_: argparse.Namespace) -> None:
    s = _settings()
    version = artifact.current_version(s.index_root)
    if version is None:
        print(f"no index built under {s.index_root}; run: admatch index build")
        sys.exit(1)
    try:
        m = artifact.read_manifest(s.index_root, version)
    except artifact.ArtifactError as e:
        sys.exit(f"admatch: {e}")
    print(json.dumps({"version": m.version, "built_at": m.built_at, "ad_count": m.ad_count,
                      "vocabulary_size": m.vocabulary_size, "dense_dim": m.dense_dim,
                      "faiss_index": m.faiss_index, "libraries": m.libraries}, ensure_ascii=False, indent=2))


def cmd_ledger_verify(_: argparse.Namespace) -> None:
    s = _settings()

    async def run(url: str) -> ledger.Verification:
        r = open_redis(url, s.redis_cluster)
        try:
            return await ledger.verify(r)
        finally:
            await r.aclose()

    with redis_url(s) as url:
        v = asyncio.run(run(url))
    for m in v.mismatches:
        print("MISMATCH", m)
    print(f"{'ok' if v.ok else 'FAILED'}: {v.campaigns} campaigns, {v.entries} ledger entries, "
          f"{v.charged_fen} fen charged, {len(v.mismatches)} mismatches")
    sys.exit(0 if v.ok else 1)


def cmd_demo(args: argparse.Namespace) -> None:
    own_admin_key = bool(os.environ.get("ADMATCH_ADMIN_KEY"))
    # The server process reads its settings from the environment: the demo's admin key reaches it so.
    os.environ.setdefault("ADMATCH_ADMIN_KEY", DEMO_ADMIN_KEY)
    s = _settings()
    host, port = args.host or s.host, args.port or s.port

    async def prepare(url: str) -> artifact.Manifest:
        r = open_redis(url, s.redis_cluster)
        try:
            store = CatalogStore(r)
            await load_demo(store)
            return await build_from_catalog(store, s.index_root, progress=True)
        finally:
            await r.aclose()

    with redis_url(s) as url:
        m = asyncio.run(prepare(url))
        print(guide(f"http://{host}:{port}", m.version, m.ad_count, own_admin_key=own_admin_key), flush=True)
        if not args.no_serve:
            _serve(s, url, host, port, 1)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="admatch", description="contextual ad matching for Chinese pages")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the HTTP service")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(func=cmd_serve)
    idx = sub.add_parser("index", help="build or inspect the index").add_subparsers(dest="index_cmd", required=True)
    b = idx.add_parser("build", help="build a new index version from the catalog in Redis and publish it")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=cmd_index_build)
    st = idx.add_parser("status", help="print the published index's manifest")
    st.set_defaults(func=cmd_index_status)
    led = sub.add_parser("ledger", help="billing ledger tools").add_subparsers(dest="ledger_cmd", required=True)
    lv = led.add_parser("verify", help="recompute spend from the ledger and compare with the counters")
    lv.set_defaults(func=cmd_ledger_verify)
    d = sub.add_parser("demo", help="load the demo catalog, build the index and serve it")
    d.add_argument("--host")
    d.add_argument("--port", type=int)
    d.add_argument("--no-serve", action="store_true", help="load and build only")
    d.set_defaults(func=cmd_demo)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
