"""``admatch serve --workers 2``: each worker listens on a SO_REUSEPORT socket of its own
(service/http_workers.py), so connections opened at once spread over the workers instead of
landing wherever one process woke first. Observed from the kernel's socket tables (/proc), not
from the code under test."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import httpx
import pytest

from tests.servers import admatch, demo_served, wait_for

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/net/tcp")

LISTEN, ESTABLISHED = "0A", "01"


def tcp_sockets(port: int, state: str) -> set[int]:
    """Inodes of the IPv4 TCP sockets whose local port is ``port`` in ``state``."""
    out = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if int(f[1].split(":")[1], 16) == port and f[3] == state:
            out.add(int(f[9]))
    return out


def owners(inodes: set[int]) -> dict[int, int]:
    """pid → how many of the socket ``inodes`` it holds open."""
    held: dict[int, int] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        n = sum(1 for link in links if link.startswith("socket:[") and int(link[8:-1]) in inodes)
        if n:
            held[int(pid)] = n
    return held


def test_each_worker_listens_on_its_own_socket_and_connections_spread_over_them() -> None:
    with demo_served("admin-workers-test", workers=2) as (base, _data):
        port = int(base.rsplit(":", 1)[1])
        wait_for(lambda: len(tcp_sockets(port, LISTEN)) == 2, "both workers listen", timeout=60)
        # two listening sockets, each held by one process (uvicorn's shared socket: one socket held
        # by the supervisor and every worker)
        listening = owners(tcp_sockets(port, LISTEN))
        assert len(listening) == 2 and all(n == 1 for n in listening.values()), listening

        # 32 connections opened at once, each kept open with a request on it
        clients = [httpx.Client(base_url=base, timeout=10) for _ in range(32)]
        try:
            for c in clients:
                assert c.get("/healthz").status_code == 200
            # the server side of each connection: the local port is the server's
            held = owners(tcp_sockets(port, ESTABLISHED))
            by_worker = {pid: held.get(pid, 0) for pid in listening}
            assert sum(by_worker.values()) == 32, by_worker
            assert all(n > 0 for n in by_worker.values()), by_worker  # 32 on one worker: 2 in 2**32
        finally:
            for c in clients:
                c.close()


def test_a_taken_port_is_refused_at_start() -> None:
    """The supervisor binds the address first: a port another program listens on fails the start
    instead of starting workers that cannot listen."""
    other = socket.socket()
    other.bind(("127.0.0.1", 0))
    other.listen()
    try:
        port = other.getsockname()[1]
        done = admatch(["serve", "--workers", "2", "--port", str(port)],
                       {"ADMATCH_REDIS_URL": "redis://127.0.0.1:1/0"})
        assert done.returncode != 0
        assert f"cannot listen on 127.0.0.1:{port}" in done.stdout + done.stderr
    finally:
        other.close()
