"""The ``admatch`` command: serve, analyzer, index build/status, ledger verify/archive, implog export, demo."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import redis
import redis.asyncio as aioredis
import uvicorn
from pydantic import ValidationError

from index import artifact
from matching.encoder import default_encoder
from service import http_workers
from service.analysis.process import default_consumer, run_analyzer
from service.analysis.queue import read_backlog
from service.analysis.worker import WorkerOptions
from service.app import open_redis
from service.billing import archive, ledger
from service.ctr import log as implog
from service.demo.guide import guide
from service.demo.loader import DEMO_ADMIN_KEY, demo_origins, load_demo
from service.demo.traffic import demo_traffic
from service.openrtb.demo import register_demo_exchange
from service.serving.ad_vectors import AdVectors
from service.serving.indexing import build_from_catalog
from service.settings import Settings
from service.store.catalog import CatalogStore
from service.store.redis_conn import redis_url
from service.tag.sites import SiteStore

WORKER_STARTUP_SECONDS = 300
ANALYZER_STOP_SECONDS = 30  # the demo's analyzer finishes its batch (a few seconds) within this

SERVE_EPILOG = """\
Pages are understood in the background: every process queues the pages it serves, and
'admatch analyzer' workers encode them and store their profiles for every process. Run any
number of workers, on any machines, with the same ADMATCH_REDIS_URL (without it, on this machine,
a worker attaches to the embedded server 'admatch serve' started):

  ADMATCH_REDIS_URL=redis://redis.internal:6379/0 admatch analyzer --metrics-port 9101

Backlog: 'admatch index status', GET /v1/index/status, /metrics (admatch_analysis_*)."""


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'settings'}: {err['msg']}" for err in e.errors())
        sys.exit(f"admatch: invalid settings: {problems}")


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    sys.exit(128 + signum)


APP = "service.app:create_app"


def _serve(settings: Settings, url: str, host: str, port: int, workers: int) -> None:
    os.environ["ADMATCH_REDIS_URL"] = url  # workers (separate processes) read settings from env
    # uvicorn shuts down on SIGTERM, then raises it again with the handler it found: with the
    # default one the process would die before its embedded server (and its supervisor) is
    # stopped, leaving an orphan the next start would attach to unsupervised. Exit instead.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # A worker imports jieba, OpenCC and FAISS and loads the index before it answers: give it more
    # than uvicorn's 5 s, or a busy machine kills and restarts workers in a loop.
    options: dict[str, Any] = dict(factory=True, host=host, port=port, workers=workers, log_level="info",
                                   access_log=settings.access_log, timeout_worker_healthcheck=WORKER_STARTUP_SECONDS)
    if workers > 1 and http_workers.reuse_port_available(host):
        # a socket per worker: connections spread over the workers (service/http_workers.py)
        http_workers.run(uvicorn.Config(APP, **options))
    else:
        uvicorn.run(APP, **options)


async def _build(settings: Settings, url: str, progress: bool) -> artifact.Manifest:
    r = open_redis(url, settings.redis_cluster)
    try:
        return await build_from_catalog(CatalogStore(r), settings.index_root, progress=progress,
                                        vectors=ad_vectors(settings, r))
    finally:
        await r.aclose()


def ad_vectors(settings: Settings, r: aioredis.Redis) -> AdVectors | None:
    """The ads' sentence-encoder vectors for a build (None: ADMATCH_SEMANTIC=false)."""
    return AdVectors(r, default_encoder()) if settings.semantic else None


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


def _backlog(s: Settings) -> dict[str, Any]:
    async def run(url: str) -> dict[str, Any]:
        r = open_redis(url, s.redis_cluster)
        try:
            return dataclasses.asdict(await read_backlog(r))
        finally:
            await r.aclose()

    try:
        with redis_url(s) as url:
            return asyncio.run(run(url))
    except (redis.RedisError, OSError) as e:
        return {"error": f"Redis did not answer: {e}"}


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
                      "faiss_index": m.faiss_index, "libraries": m.libraries,
                      "analysis": _backlog(s)}, ensure_ascii=False, indent=2))


def cmd_ledger_verify(args: argparse.Namespace) -> None:
    s = _settings()
    root = Path(args.archive_dir) if args.archive_dir else s.ledger_archive_root

    async def run(url: str) -> ledger.Verification:
        r = open_redis(url, s.redis_cluster)
        try:
            return await ledger.verify(r, root)
        finally:
            await r.aclose()

    with redis_url(s) as url:
        v = asyncio.run(run(url))
    for m in v.mismatches:
        print("MISMATCH", m)
    print(f"{'ok' if v.ok else 'FAILED'}: {v.campaigns} campaigns, {v.entries} ledger entries "
          f"({v.archived_entries} from {v.archive_files} archive files under {root}; {v.chained_entries} "
          f"hash-chained, {v.unchained_entries} unchained from before chaining), "
          f"{v.charged_fen} fen charged, {len(v.mismatches)} mismatches")
    sys.exit(0 if v.ok else 1)


def cmd_ledger_archive(args: argparse.Namespace) -> None:
    s = _settings()
    root = Path(args.archive_dir) if args.archive_dir else s.ledger_archive_root

    async def run(url: str) -> archive.ArchiveReport:
        r = open_redis(url, s.redis_cluster)
        try:
            return await archive.archive(r, root, older_than_days=args.older_than_days, tz=s.timezone,
                                         trim=not args.keep_stream)
        finally:
            await r.aclose()

    with redis_url(s) as url:
        try:
            rep = asyncio.run(run(url))
        except archive.ArchiveError as e:
            sys.exit(f"admatch: {e}")
    for p in rep.problems:
        print("PROBLEM", p)
    print(f"{'ok' if not rep.problems else 'FAILED'}: {rep.campaigns} campaigns, {rep.archived} entries "
          f"archived into {len(rep.files)} files ({rep.bytes_written} bytes) under {root}, "
          f"{rep.trimmed} deleted from the streams")
    sys.exit(0 if not rep.problems else 1)


async def export_log(r: aioredis.Redis, out: TextIO, start: str = "-") -> tuple[int, str | None]:
    """Write every impression-log entry from ``start`` on to ``out`` as JSON Lines; returns how
    many and the last stream id (pass it, with a leading ``(``, as the next export's start)."""
    n, last = 0, None
    async for entry in implog.read(r, start=start):
        out.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n")
        n, last = n + 1, entry["id"]
    return n, last


def cmd_implog_export(args: argparse.Namespace) -> None:
    s = _settings()

    async def run(url: str, out: TextIO) -> tuple[int, str | None]:
        r = open_redis(url, s.redis_cluster)
        try:
            return await export_log(r, out, args.start)
        finally:
            await r.aclose()

    with redis_url(s) as url:
        if args.out == "-":
            n, last = asyncio.run(run(url, sys.stdout))
        else:
            with open(args.out, "w", encoding="utf-8") as f:
                n, last = asyncio.run(run(url, f))
    print(f"{n} entries exported, last id {last}", file=sys.stderr)


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number")
    return n


def cmd_analyzer(args: argparse.Namespace) -> None:
    s = _settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    claim = args.claim_idle if args.claim_idle is not None else s.analysis_claim_idle_seconds
    opts = WorkerOptions(consumer=args.consumer or default_consumer(), batch=args.batch, claim_idle_s=claim,
                         dedupe_s=s.analysis_dedupe_seconds)
    with redis_url(s) as url:
        asyncio.run(run_analyzer(s, url, opts, threads=args.threads, metrics_port=args.metrics_port,
                                 metrics_host=args.metrics_host))


@contextmanager
def _analyzer_process(url: str) -> Iterator[subprocess.Popen[bytes]]:
    """One ``admatch analyzer`` against ``url`` for as long as the block runs."""
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "analyzer"],
                            env={**os.environ, "ADMATCH_REDIS_URL": url})
    try:
        yield proc
    finally:
        proc.terminate()  # finishes its batch; after Ctrl-C it already has the SIGINT
        try:
            proc.wait(timeout=ANALYZER_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cmd_demo(args: argparse.Namespace) -> None:
    own_admin_key = bool(os.environ.get("ADMATCH_ADMIN_KEY"))
    # The server process reads its settings from the environment: the demo's admin key reaches it so.
    os.environ.setdefault("ADMATCH_ADMIN_KEY", DEMO_ADMIN_KEY)
    s = _settings()
    host, port = args.host or s.host, args.port or s.port

    async def prepare(url: str) -> tuple[artifact.Manifest, str | None]:
        r = open_redis(url, s.redis_cluster)
        try:
            store = CatalogStore(r)
            await load_demo(store, SiteStore(r), demo_origins(host, port))
            await register_demo_exchange(r)
            m = await build_from_catalog(store, s.index_root, progress=True, vectors=ad_vectors(s, r))
            if args.no_traffic or not s.demo_traffic:
                return m, None
            try:
                return m, await demo_traffic(r, s)
            except Exception:  # the demo serves all the same, with what was replayed
                logging.getLogger(__name__).exception("the demo's simulated traffic could not be replayed")
                return m, "The replay of simulated traffic failed (logged above); the demo serves without it."
        finally:
            await r.aclose()

    if s.public_base_url is None and host not in ("0.0.0.0", "::"):
        os.environ["ADMATCH_PUBLIC_BASE_URL"] = f"http://{host}:{port}"  # the demo's click URLs; no warning
    os.environ["ADMATCH_DEMO_PAGES"] = "true"  # the demo articles at /demo/article/
    with redis_url(s) as url:
        m, traffic = asyncio.run(prepare(url))
        print(guide(f"http://{host}:{port}", m.version, m.ad_count, own_admin_key=own_admin_key,
                    openrtb_path=s.openrtb_path, traffic=traffic), flush=True)
        if not args.no_serve:
            with _analyzer_process(url):
                _serve(s, url, host, port, 1)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="admatch", description="contextual ad matching for Chinese pages")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the HTTP service", epilog=SERVE_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(func=cmd_serve)
    a = sub.add_parser("analyzer", help="run a page analyzer worker (any number, on any machines)",
                       description="Encode queued pages and store their profiles until SIGTERM or SIGINT "
                       "(the batch in hand is finished). Workers share the queue through ADMATCH_REDIS_URL.")
    a.add_argument("--consumer", help="this worker's name in the consumer group (default: hostname-pid)")
    a.add_argument("--batch", type=_positive, default=16, help="pages read and encoded together (default 16)")
    a.add_argument("--claim-idle", type=float, metavar="SECONDS",
                   help="take over pages another worker read this long ago and did not finish "
                        "(default ADMATCH_ANALYSIS_CLAIM_IDLE_SECONDS)")
    a.add_argument("--threads", type=_positive, default=1,
                   help="BLAS threads of the encoder (default 1; more only with idle cores: on a busy 2-core "
                        "machine 2 threads analysed 1.5 pages/s against 10 with 1). Scale with more workers")
    a.add_argument("--metrics-port", type=int, help="serve this worker's Prometheus metrics on this port")
    a.add_argument("--metrics-host", default="127.0.0.1", help="address of the metrics port (default 127.0.0.1)")
    a.set_defaults(func=cmd_analyzer)
    idx = sub.add_parser("index", help="build or inspect the index").add_subparsers(dest="index_cmd", required=True)
    b = idx.add_parser("build", help="build a new index version from the catalog in Redis and publish it")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=cmd_index_build)
    st = idx.add_parser("status", help="print the published index's manifest and the analysis backlog")
    st.set_defaults(func=cmd_index_status)
    led = sub.add_parser("ledger", help="billing ledger tools").add_subparsers(dest="ledger_cmd", required=True)
    lv = led.add_parser("verify", help="recompute spend from the ledger (archive files and stream) and compare "
                                       "with the counters; check each campaign's hash chain and its heads")
    lv.add_argument("--archive-dir", help="archive root (default ADMATCH_LEDGER_ARCHIVE_DIR)")
    lv.set_defaults(func=cmd_ledger_verify)
    la = led.add_parser("archive", help="move ledger entries older than N days into checksummed daily files")
    la.add_argument("--older-than-days", type=int, required=True, metavar="N",
                    help="archive entries from before the billing day N days ago (0: before today)")
    la.add_argument("--archive-dir", help="archive root (default ADMATCH_LEDGER_ARCHIVE_DIR)")
    la.add_argument("--keep-stream", action="store_true",
                    help="write the files but delete nothing from the streams (check with ledger verify)")
    la.set_defaults(func=cmd_ledger_archive)
    il = sub.add_parser("implog", help="the impression log").add_subparsers(dest="implog_cmd", required=True)
    ie = il.add_parser("export", help="write the impression log (impressions and genuine clicks) as JSON Lines",
                       description="One JSON object a line, oldest first, each with its stream id; join clicks "
                                   "to impressions on 'imp'. No user data is in the log.")
    ie.add_argument("--out", default="-", help="output file (default: standard output)")
    ie.add_argument("--start", default="-",
                    help="first stream id to export (inclusive; '(ID' exclusive: the last id of the previous export)")
    ie.set_defaults(func=cmd_implog_export)
    d = sub.add_parser("demo", help="load the demo catalog, build the index, replay a day of simulated traffic "
                                    "and serve it (with one analyzer)")
    d.add_argument("--host")
    d.add_argument("--port", type=int)
    d.add_argument("--no-serve", action="store_true", help="load and build only")
    d.add_argument("--no-traffic", action="store_true",
                   help="no simulated traffic (also ADMATCH_DEMO_TRAFFIC=false); by default a new data directory "
                        "gets a day of it through the real match and click path, so charts have data at once")
    d.set_defaults(func=cmd_demo)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
