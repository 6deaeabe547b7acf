"""The click spool: clicks redirected while Redis could not decide them, kept on local disk until
it can.

Contract: :meth:`ClickSpool.put` returns only once the click is on disk (written, fsynced, renamed
into place, directory fsynced), so a click the reader was redirected for survives a crash or a
restart of the process. The drain decides each spooled click with the same job as the click
route (:class:`service.billing.click_flow.ClickJob`) and deletes its file only after Redis
answered; a crash in between decides it again, which the click script, idempotent by impression
id, never charges twice.

Layout: ``<dir>/<nanoseconds>-<impression id>.json``, one file a click (0600, directory 0700:
they carry the reader's IP address and user key); files being written start with ``.``; files
that cannot be read are moved to ``<dir>/rejected/``. Processes sharing the directory (workers)
write freely and drain one at a time (an exclusive lock on ``<dir>/.drain.lock``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from service.billing.click_flow import PendingClick
from service.resilience.backoff import LoopHealth

log = logging.getLogger(__name__)

DRAIN_INTERVAL_S = 1.0


class ClickSpool:
    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)

    async def put(self, click: PendingClick) -> bool:
        """Keep ``click`` on disk; False (logged) when it could not be written."""
        try:
            await asyncio.to_thread(self._write, click)
            return True
        except OSError:
            log.exception("click %s could not be spooled: it is lost unless the reader clicks again",
                          click.claim.imp)
            return False

    def _write(self, click: PendingClick) -> None:
        name = f"{time.time_ns():020d}-{click.claim.imp}.json"
        tmp = self.dir / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, click.to_json().encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, self.dir / name)
        dfd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dfd)  # the rename itself is durable
        finally:
            os.close(dfd)

    def files(self) -> list[Path]:
        """Spooled clicks, oldest first."""
        return sorted(p for p in self.dir.iterdir() if p.suffix == ".json" and not p.name.startswith("."))

    def count(self) -> int:
        return len(self.files())

    @contextlib.contextmanager
    def _drain_lock(self) -> Iterator[bool]:
        with (self.dir / ".drain.lock").open("w") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False  # another process is draining
                return
            try:
                yield True
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    async def drain(self, decide: Callable[[PendingClick], Awaitable[object]]) -> int:
        """Decide every spooled click, oldest first; how many were decided. A click whose decision
        fails stays (with every later one) for the next drain, and the failure propagates."""
        done = 0
        with self._drain_lock() as mine:
            if not mine:
                return 0
            for path in self.files():
                try:
                    click = PendingClick.from_json(path.read_bytes())
                except FileNotFoundError:
                    continue
                except (ValueError, KeyError, TypeError) as e:
                    self._reject(path, e)
                    continue
                await decide(click)
                path.unlink(missing_ok=True)
                done += 1
        return done

    def _reject(self, path: Path, error: Exception) -> None:
        rejected = self.dir / "rejected"
        rejected.mkdir(exist_ok=True)
        os.replace(path, rejected / path.name)
        log.error("spooled click %s is unreadable (%s): moved to %s for a person to look at", path.name, error,
                  rejected)

    async def run(self, decide: Callable[[PendingClick], Awaitable[object]],
                  interval: float = DRAIN_INTERVAL_S) -> None:
        """Drain every ``interval`` seconds (run as a task; cancelled at shutdown)."""
        health = LoopHealth("click spool drain", interval, log)
        while True:
            try:
                n = await self.drain(decide)
            except Exception as e:
                delay = health.failed(e)
            else:
                delay = health.ok()
                if n:
                    log.warning("%d spooled clicks decided; %d left", n, self.count())
            await asyncio.sleep(delay)
