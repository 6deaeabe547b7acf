"""Analyzer workers: no page is lost to a worker that dies, stopping finishes the batch in hand,
bad entries never loop, and a worker's vectors are the pages' own."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import IO, Any

import numpy as np
import pytest
import redis

from matching.analyze import make_page
from matching.encoder import default_encoder
from matching.semantic import page_vector
from matching.types import Page
from service import metrics
from service.analysis.profiles import ProfileStore, encoder_hash
from service.analysis.queue import AnalysisQueue, ensure_group
from service.analysis.worker import MAX_DELIVERIES, Analyzer, WorkerOptions, encode_pages
from service.store import keys
from service.store.redis_conn import open_async
from tests.servers import clean_env, wait_for

SENTENCES = ["城东楼盘集中开盘，首付两成，房贷利率下调。", "运营商推出新的手机套餐，长话、市话、漫游一个价。",
             "球队在主场以三比一获胜，主教练赛后表示满意。", "新学期开学，学校增加了课后服务和兴趣课程。"]


def article(i: int) -> Page:
    """A long article (every one of its 16 passages read), different for each ``i``."""
    text = "".join(SENTENCES[(i + j) % 4] + f"第{i}篇第{j}段。" for j in range(120))
    return make_page(title=f"本地新闻第{i}期", text=text)


def queue_pages(url: str, n: int) -> list[str]:
    """Queue ``n`` long articles through the production queue; returns their page keys."""
    async def go() -> None:
        r = open_async(url)
        try:
            await ensure_group(r)
            q = AnalysisQueue(r, max_length=10_000, dedupe_s=600)
            for i in range(n):
                q.offer(f"page-{i}", article(i))
            assert (await q.flush()).queued == n
        finally:
            await r.aclose()
    asyncio.run(go())
    return [f"page-{i}" for i in range(n)]


def profile_key(page_key: str) -> str:
    return keys.page_profile(encoder_hash(default_encoder().name), page_key)


def pending_of(r: redis.Redis, consumer: str | None = None) -> int:
    if consumer is None:
        return int(r.xpending(keys.ANALYSIS_QUEUE, keys.ANALYSIS_GROUP)["pending"])
    return len(r.xpending_range(keys.ANALYSIS_QUEUE, keys.ANALYSIS_GROUP, "-", "+", 1000, consumername=consumer))


@contextmanager
def analyzer(url: str, *args: str) -> Iterator[tuple[subprocess.Popen[bytes], IO[bytes]]]:
    """``admatch analyzer`` against ``url``; yields the process and its output file."""
    out = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "analyzer", *args],
                            env=clean_env({"ADMATCH_REDIS_URL": url}), cwd=tempfile.gettempdir(),
                            stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out.close()


def output(out: IO[bytes]) -> str:
    out.seek(0)
    return out.read().decode(errors="replace")


def test_a_worker_killed_mid_batch_loses_no_page(redis_url: str, clean_redis: redis.Redis) -> None:
    """Pages a worker read and was killed before finishing are taken over and analysed by another worker."""
    pages = queue_pages(redis_url, 24)
    with analyzer(redis_url, "--consumer", "doomed", "--batch", "24") as (doomed, _):
        wait_for(lambda: pending_of(clean_redis, "doomed") > 0, "the worker never read the pages", timeout=120)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
    assert pending_of(clean_redis, "doomed") == 24
    assert not any(clean_redis.exists(profile_key(k)) for k in pages)
    with analyzer(redis_url, "--consumer", "heir", "--claim-idle", "1") as (heir, out):
        wait_for(lambda: clean_redis.xlen(keys.ANALYSIS_QUEUE) == 0, "the pages were not analysed", timeout=120)
        heir.terminate()
        assert heir.wait(timeout=60) == 0, output(out)
        assert "took over 16 pages" in output(out)
    assert pending_of(clean_redis) == 0
    assert all(clean_redis.strlen(profile_key(k)) == 512 * 2 for k in pages)


def test_a_stopped_worker_finishes_the_batch_in_hand(redis_url: str, clean_redis: redis.Redis) -> None:
    """SIGTERM stops a worker only after the batch it is encoding is stored and acknowledged."""
    pages = queue_pages(redis_url, 40)
    with analyzer(redis_url, "--consumer", "w", "--batch", "16") as (worker, out):
        wait_for(lambda: pending_of(clean_redis, "w") > 0, "the worker never read the pages", timeout=120)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, output(out)
    assert pending_of(clean_redis) == 0
    analysed = [k for k in pages if clean_redis.exists(profile_key(k))]
    assert len(analysed) >= 16
    assert len(analysed) + clean_redis.xlen(keys.ANALYSIS_QUEUE) == len(pages)


def step_once(url: str, **options: Any) -> list[Any]:
    """Run an in-process analyzer until it finds nothing to read; returns what each step did."""
    async def go() -> list[Any]:
        rb = open_async(url, decode=False)
        try:
            await ensure_group(rb)
            enc = default_encoder()
            a = Analyzer(rb, ProfileStore(rb, enc.name, dim=enc.dim, ttl_s=600), enc,
                         WorkerOptions(consumer="in-process", block_s=0.2, **options))
            steps = []
            while (got := await a.step()) is not None:
                steps.append(got)
            return steps
        finally:
            await rb.aclose()
    return asyncio.run(go())


def test_an_entry_that_is_not_a_page_is_acknowledged_and_logged_once(redis_url: str, clean_redis: redis.Redis,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """Entries with missing fields or bytes that are not UTF-8 are acknowledged, logged and never retried."""
    raw = redis.Redis.from_url(redis_url)
    raw.xgroup_create(keys.ANALYSIS_QUEUE, keys.ANALYSIS_GROUP, id="0", mkstream=True)
    raw.xadd(keys.ANALYSIS_QUEUE, {b"k": b"\xff\xfe", b"ti": b"t", b"b": b"b", b"t": b"1"})
    raw.xadd(keys.ANALYSIS_QUEUE, {b"something": b"else"})
    raw.close()
    [good] = queue_pages(redis_url, 1)
    before = metrics.ANALYSIS_REJECTED.labels("undecodable")._value.get()
    with caplog.at_level(logging.ERROR, logger="service.analysis.worker"):
        steps = step_once(redis_url, batch=8)
    assert [[a.page_key for a in s] for s in steps] == [[good]]
    assert len([r for r in caplog.records if "is not a page" in r.getMessage()]) == 2
    assert metrics.ANALYSIS_REJECTED.labels("undecodable")._value.get() - before == 2
    assert clean_redis.xlen(keys.ANALYSIS_QUEUE) == 0 and pending_of(clean_redis) == 0


def test_an_entry_delivered_too_often_is_given_up(redis_url: str, clean_redis: redis.Redis,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """A page that was delivered more than MAX_DELIVERIES times (it keeps killing workers) is dropped, not retried."""
    [page] = queue_pages(redis_url, 1)
    [[_, [(entry_id, _)]]] = clean_redis.xreadgroup(keys.ANALYSIS_GROUP, "dead", {keys.ANALYSIS_QUEUE: ">"})
    clean_redis.xclaim(keys.ANALYSIS_QUEUE, keys.ANALYSIS_GROUP, "dead", 0, [entry_id], retrycount=MAX_DELIVERIES)
    with caplog.at_level(logging.ERROR, logger="service.analysis.worker"):
        assert step_once(redis_url, claim_idle_s=0.001) == []
    assert any("gave up 1" in r.getMessage() for r in caplog.records)
    assert clean_redis.xlen(keys.ANALYSIS_QUEUE) == 0 and pending_of(clean_redis) == 0
    assert not clean_redis.exists(profile_key(page))


def test_a_batch_encodes_each_page_as_page_vector_does() -> None:
    """One encoder call over a batch's passages gives every page the vector page_vector gives it alone."""
    demo = json.loads(resources.files("service.demo").joinpath("pages.json").read_text("utf-8"))
    pages = [make_page(title=p["title"], text=p["text"]) for p in demo] + [article(1), Page(title="", body="")]
    enc = default_encoder()
    batch = encode_pages(pages, enc)
    alone = np.array([page_vector(p, enc) for p in pages])
    np.testing.assert_allclose(batch, alone, atol=1e-5)
    assert not batch[-1].any()  # no text: zeros, as page_vector


def test_an_analysed_page_is_not_queued_again_within_the_window(redis_url: str, clean_redis: redis.Redis) -> None:
    """A page offered again after a worker analysed it (its entry deleted) is not queued again."""
    [page] = queue_pages(redis_url, 1)
    assert [[a.page_key for a in s] for s in step_once(redis_url)] == [[page]]

    async def offer_again() -> int:
        r = open_async(redis_url)
        try:
            q = AnalysisQueue(r, max_length=100, dedupe_s=600)
            q.offer(page, article(0))
            return (await q.flush()).deduplicated
        finally:
            await r.aclose()
    assert asyncio.run(offer_again()) == 1
    assert clean_redis.xlen(keys.ANALYSIS_QUEUE) == 0
