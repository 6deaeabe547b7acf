"""Several HTTP worker processes, each accepting on its own ``SO_REUSEPORT`` socket.

uvicorn's ``--workers`` shares one listening socket among its processes: whichever process wakes
first accepts every connection waiting. A client that opens a few keep-alive connections at once
(a publisher's server with a connection pool, a load balancer, ``wrk -c16``) then often lands on
one process while the others idle — in the 100k-ad benchmark one of every few 2-worker runs served
all 16 connections from one worker (7 % and 100 % CPU) at about half the throughput. With a
socket of its own in a ``SO_REUSEPORT`` group per process, the kernel spreads new connections over
the processes by a hash of their addresses.

uvicorn's supervisor (``uvicorn.supervisors.Multiprocess``: health checks, restarts, signals) is
kept; only its worker process type is replaced, so each worker — a restarted one too — binds and
listens on its own socket. The supervisor's own socket is bound (the address is taken and checked
at start) but never listens, so it receives no connections. Linux lets only processes of the same
user join a port's SO_REUSEPORT group, so another user's program cannot take a share of them.
"""

from __future__ import annotations

import ipaddress
import socket
import sys

import uvicorn
from uvicorn.supervisors import multiprocess


def reuse_port_available(host: str) -> bool:
    """Whether workers can listen on ``host`` with a socket each: the platform has SO_REUSEPORT
    and the host is an address (not a name that may resolve to several)."""
    if not hasattr(socket, "SO_REUSEPORT"):
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) with SO_REUSEPORT, not yet listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


class _OwnSocketProcess(multiprocess.Process):
    """A uvicorn worker that serves on a SO_REUSEPORT socket of its own (bound in the worker)."""

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # pragma: no cover - in the child
        for s in sockets or ():
            s.close()  # the supervisor's: bound, never listening
        super().target([bind(self.config.host, self.config.port)])


def run(config: uvicorn.Config) -> None:
    """Run ``config.workers`` worker processes under uvicorn's supervisor, one socket each."""
    try:
        sock = bind(config.host, config.port)
    except OSError as e:
        sys.exit(f"admatch: cannot listen on {config.host}:{config.port}: {e.strerror or e}")
    config.port = sock.getsockname()[1]  # port 0: every worker binds the port the kernel chose here
    multiprocess.Process = _OwnSocketProcess  # type: ignore[misc]  # the type the supervisor starts workers as
    multiprocess.Multiprocess(config, sockets=[sock]).run()
