"""The analysis queue: the request path's offer never waits or fails, pages are queued once per
dedupe window, the queue stays bounded, and entries carry what the encoder reads."""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.analyze import make_page
from matching.semantic import passages
from matching.types import Page
from service import metrics
from service.analysis.entries import cut_body
from service.analysis.queue import AnalysisQueue, ensure_group, read_backlog
from service.store import keys
from service.store.redis_conn import open_async
from tests.servers import free_port

T = TypeVar("T")
SENTENCE = "城东楼盘集中开盘，首付两成，房贷利率下调。"


def long_page(i: int, chars: int = 200_000) -> Page:
    return make_page(title=f"楼市新政第{i}期", text=(SENTENCE * (chars // len(SENTENCE) + 1))[:chars])


def run(url: str, fn: Callable[[AnalysisQueue], Awaitable[T]], **kw: float) -> T:
    """Run ``fn`` with a queue on ``url`` (a fresh client, closed afterwards)."""
    async def go() -> T:
        r = open_async(url)
        try:
            return await fn(AnalysisQueue(r, max_length=int(kw.get("max_length", 100)),
                                          dedupe_s=kw.get("dedupe_s", 60)))
        finally:
            await r.aclose()
    return asyncio.run(go())


def counter(c: object) -> float:
    return float(c._value.get())  # type: ignore[attr-defined]


def test_a_page_offered_twice_within_the_window_is_queued_once(redis_url, clean_redis: redis.Redis) -> None:
    """The same page offered twice in one flush and again in a later one is queued once."""
    async def go(q: AnalysisQueue) -> list[int]:
        q.offer("p1", long_page(1))
        q.offer("p1", long_page(1))
        first = await q.flush()
        q.offer("p1", long_page(1))
        q.offer("p2", long_page(2))
        second = await q.flush()
        return [first.queued, second.queued, second.deduplicated]

    assert run(redis_url, go) == [1, 1, 1]
    assert clean_redis.xlen(keys.ANALYSIS_QUEUE) == 2
    assert 0 < clean_redis.ttl(keys.analysis_seen("p1")) <= 60


def test_a_full_queue_drops_pages_without_marking_them_seen(redis_url, clean_redis: redis.Redis) -> None:
    """Pages beyond the queue's maximum are dropped and counted, and queued once there is room."""
    dropped_before = counter(metrics.ANALYSIS_DROPPED.labels("queue_full"))

    async def go(q: AnalysisQueue) -> tuple[int, int]:
        for i in range(5):
            q.offer(f"p{i}", long_page(i, 500))
        full = await q.flush()
        await q._r.delete(keys.ANALYSIS_QUEUE)  # the workers caught up
        q.offer("p4", long_page(4, 500))
        return full.dropped, (await q.flush()).queued

    assert run(redis_url, go, max_length=3) == (2, 1)
    assert counter(metrics.ANALYSIS_DROPPED.labels("queue_full")) - dropped_before == 2


def test_offer_stays_sub_millisecond_and_silent_with_the_queue_full(redis_url, clean_redis: redis.Redis) -> None:
    """With the queue full, offering 200 kB pages takes well under a millisecond and raises nothing."""
    pages = [long_page(i) for i in range(50)]

    async def go(q: AnalysisQueue) -> list[float]:
        times = []
        for round_ in range(20):
            for i, page in enumerate(pages):
                t = time.perf_counter()
                q.offer(f"r{round_}-{i}", page)
                times.append(time.perf_counter() - t)
            await q.flush()
        return times

    times = run(redis_url, go, max_length=2)
    assert clean_redis.xlen(keys.ANALYSIS_QUEUE) == 2
    assert statistics.median(times) < 1e-4
    assert sorted(times)[int(len(times) * 0.99)] < 1e-3


def test_offer_stays_sub_millisecond_and_silent_with_redis_down(caplog) -> None:
    """With Redis unreachable, offers stay fast and silent, flushes drop their pages and log once."""
    url = f"redis://127.0.0.1:{free_port()}"  # nothing listens there
    before = counter(metrics.ANALYSIS_DROPPED.labels("redis_error"))

    page = long_page(0)

    async def go(q: AnalysisQueue) -> tuple[list[float], list[int]]:
        times, dropped = [], []
        for round_ in range(5):
            for i in range(100):
                t = time.perf_counter()
                q.offer(f"r{round_}-{i}", page)
                times.append(time.perf_counter() - t)
            dropped.append((await q.flush()).dropped)
        return times, dropped

    with caplog.at_level(logging.WARNING, logger="service.analysis.queue"):
        times, dropped = run(url, go)
    assert dropped == [100] * 5
    assert counter(metrics.ANALYSIS_DROPPED.labels("redis_error")) - before == 500
    assert sorted(times)[int(len(times) * 0.99)] < 1e-3
    assert len([r for r in caplog.records if "failed" in r.getMessage()]) == 1


def test_a_full_buffer_drops_offers_instead_of_growing(redis_url, clean_redis: redis.Redis) -> None:
    """Between flushes a process holds at most its buffer's pages; further offers are dropped and counted."""
    before = counter(metrics.ANALYSIS_DROPPED.labels("buffer"))

    async def go(_: AnalysisQueue) -> int:
        q = AnalysisQueue(open_async(redis_url), max_length=100, dedupe_s=60, buffer_pages=10)
        for i in range(25):
            q.offer(f"p{i}", long_page(i, 100))
        held = q.buffered
        await q._r.aclose()
        return held

    assert run(redis_url, go) == 10
    assert counter(metrics.ANALYSIS_DROPPED.labels("buffer")) - before == 15


@settings(max_examples=200, deadline=None)
@given(title=st.text(alphabet="楼市新政房贷 ab1", max_size=20),
       sentences=st.lists(st.tuples(st.text(alphabet="首付利率下调城东 xyz", min_size=0, max_size=600),
                                    st.sampled_from(["。", "！", "？", "；", "\n", ""])), max_size=40),
       repeat_title=st.booleans())
def test_a_cut_entry_reads_as_the_whole_page(title: str, sentences: list[tuple[str, str]], repeat_title: bool) -> None:
    """The body a queue entry carries gives the encoder exactly the passages of the whole page."""
    body = "".join(s + end for s, end in sentences)
    page = Page(title=title, body=(title + body) if repeat_title else body)
    assert passages(Page(title=page.title, body=cut_body(page))) == passages(page)


def test_backlog_is_zero_before_anything_was_queued(redis_url, clean_redis: redis.Redis) -> None:
    """Before any stream or group exists the backlog reads as empty, not as an error."""
    async def go(q: AnalysisQueue) -> tuple[object, object]:
        empty = await read_backlog(q._r)
        await ensure_group(q._r)
        await ensure_group(q._r)  # twice: no BUSYGROUP error
        return empty, await read_backlog(q._r)

    empty, created = run(redis_url, go)
    assert empty == created
    assert (created.length, created.pending, created.consumers) == (0, 0, 0)  # type: ignore[attr-defined]

