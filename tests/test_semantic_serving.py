"""The semantic signal in the service, on a real Redis-protocol server and the real app: ad vectors
kept at upload, new ads served with them live, analysed pages served from their profiles by any
process, never a ranking of another index version or encoder, a full analysis queue that fails
nothing, and ADMATCH_SEMANTIC=false."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient

from index import artifact
from matching.encoder import SentenceEncoder, default_encoder
from matching.semantic import ad_text, text_key
from service import metrics
from service.analysis.profiles import ProfileStore
from service.analysis.queue import ensure_group
from service.analysis.worker import Analyzer, WorkerOptions
from service.app import create_app, open_redis
from service.serving.ad_vectors import AdVectors, encoder_key
from service.serving.indexing import build_from_catalog, to_domain
from service.settings import Settings
from service.store import keys
from service.store.catalog import CatalogStore
from service.store.redis_conn import open_async
from tests.encoders import FakeEncoder
from tests.helpers import (
    REALTY_AD,
    REALTY_PAGE,
    match,
    new_ad,
    new_advertiser,
    new_campaign,
    new_publisher,
    reload_index,
    wait_for,
    with_store,
)

# A realty article longer than inline_analysis_chars (160): ranked on its first view, then analysed.
LONG_PAGE = {"title": "楼市观察：首付比例下调",
             "text": "城东楼盘集中开盘，首付两成，房贷利率下调，公积金贷款更划算。" * 3
                     + "业内人士表示，刚需购房者可以关注地铁沿线的新盘，学区房价格保持平稳。" * 3}
SHORT_PAGE = REALTY_PAGE  # under 160 characters: encoded inline once the encoder is loaded
# The telecom ad rewritten as a realty ad that shares few words with the pages.
EDITED_TO_REALTY = {"title": "学区二手房急售 拎包入住", "keywords": ["学区房", "二手房", "房贷"]}


@pytest.fixture(autouse=True)
def encoder_loaded() -> None:
    """The process's encoder is loaded, so short pages are encoded inline from the first request."""
    default_encoder().load()


@pytest.fixture
def build(settings: Settings) -> Callable[..., artifact.Manifest]:
    """Build and publish an index from what is in Redis now, as `admatch index build` does;
    ``encoder`` None builds without the semantic signal (ADMATCH_SEMANTIC=false)."""
    def run(encoder: SentenceEncoder | None = default_encoder()) -> artifact.Manifest:  # noqa: B008
        async def go() -> artifact.Manifest:
            r = open_redis(settings.redis_url or "", False)
            try:
                vectors = AdVectors(r, encoder) if encoder is not None else None
                return await build_from_catalog(CatalogStore(r), settings.index_root, vectors=vectors)
            finally:
                await r.aclose()
        return asyncio.run(go())
    return run


def world(client: TestClient) -> dict[str, Any]:
    """A publisher, an advertiser with a realty ad and a telecom ad."""
    pid, ph = new_publisher(client)
    aid, ah = new_advertiser(client)
    cid = new_campaign(client, ah)
    realty = new_ad(client, ah, cid, **REALTY_AD)
    telecom = new_ad(client, ah, cid)
    return {"pid": pid, "ph": ph, "aid": aid, "ah": ah, "cid": cid, "realty": realty["id"], "telecom": telecom["id"]}


def matched(client: TestClient, w: dict[str, Any], page: dict[str, str]) -> dict[str, Any]:
    r = match(client, w["ph"], w["pid"], page)
    assert r.status_code == 200, r.text
    return dict(r.json())


def semantic_of(body: dict[str, Any]) -> dict[str, float]:
    return {a["ad_id"]: a["explanation"]["signals"]["semantic"] for a in body["ads"]}


def stored_vector(r: redis.Redis, ad: Any) -> np.ndarray | None:
    """The raw vector Redis holds for an ad's current text (as the upload routes keep it)."""
    enc = default_encoder()
    raw = r.get(keys.ad_vector(encoder_key(enc), text_key(enc.name, ad_text(ad))))
    return None if raw is None else np.frombuffer(base64.b64decode(raw), dtype=np.float16).astype(np.float32)


def analyse_queued_pages(url: str) -> list[str]:
    """One in-process analyzer worker takes every queued page; returns the page keys it analysed."""
    async def go() -> list[str]:
        r = open_async(url, decode=False)
        try:
            await ensure_group(r)
            enc = default_encoder()
            worker = Analyzer(r, ProfileStore(r, enc.name, dim=enc.dim, ttl_s=600), enc,
                              WorkerOptions(consumer="test-worker", block_s=0.2))
            done: list[str] = []
            while (got := await worker.step()) is not None:
                done += [a.page_key for a in got]
            return done
        finally:
            await r.aclose()
    return asyncio.run(go())


@pytest.fixture
def other_app(settings: Settings) -> Iterator[Callable[[], TestClient]]:
    """Opens a second app on the same Redis and index root: another serving process's view."""
    opened: list[TestClient] = []

    def open_one() -> TestClient:
        c = TestClient(create_app(settings))
        c.__enter__()
        opened.append(c)
        return c
    yield open_one
    for c in opened:
        c.__exit__(None, None, None)


# --- ad vectors at upload --------------------------------------------------------------------

def test_an_ad_created_or_edited_keeps_its_vector_in_redis_under_its_content_hash(
        client: TestClient, clean_redis: redis.Redis, settings: Settings) -> None:
    """Creating an ad (match-type marks, Traditional keywords and all) stores the encoder's vector of the
    text a build will read under that text's hash; an edit stores the new text's vector."""
    aid, ah = new_advertiser(client)
    cid = new_campaign(client, ah)
    made = new_ad(client, ah, cid, title="學區房新盤", keywords=["[学区房]", '"首付"', "樓盤", "房贷"])
    ad = to_domain(with_store(settings, lambda s: s.get_ad(aid, made["id"])))
    got = stored_vector(clean_redis, ad)
    assert got is not None
    np.testing.assert_allclose(got, default_encoder().encode([ad_text(ad)])[0], atol=2e-3)
    assert clean_redis.ttl(keys.ad_vector(encoder_key(default_encoder()),
                                              text_key(default_encoder().name, ad_text(ad)))) > 0
    r = client.patch(f"/v1/ads/{made['id']}", json={"keywords": ["学区房", "公积金"]}, headers=ah)
    assert r.status_code == 200, r.text
    edited = to_domain(with_store(settings, lambda s: s.get_ad(aid, made["id"])))
    assert ad_text(edited) != ad_text(ad)
    assert stored_vector(clean_redis, edited) is not None


def test_a_csv_upload_keeps_a_vector_for_every_row(client: TestClient, clean_redis: redis.Redis,
                                                  settings: Settings) -> None:
    """Every ad of a CSV upload has its vector in Redis once the upload has returned."""
    aid, ah = new_advertiser(client)
    cid = new_campaign(client, ah)
    csv = ("title,landing_url,keywords,bid_fen\n"
           "学区房新盘开售,https://example.com/h,楼盘|学区房|首付,150\n"
           "手机套餐,https://example.com/p,流量|话费,90\n"
           "火锅外卖,https://example.com/f,火锅|外卖,60\n").encode()
    r = client.post(f"/v1/campaigns/{cid}/ads/csv", content=csv, headers={**ah, "Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    ids = [a["id"] for a in r.json()["ads"]]
    assert len(ids) == 3
    for ad_id in ids:
        assert stored_vector(clean_redis, to_domain(with_store(settings, lambda s, i=ad_id: s.get_ad(aid, i)))) \
            is not None


def test_a_build_reads_vectors_kept_at_upload_instead_of_encoding(client: TestClient, settings: Settings) -> None:
    """An index build after uploads encodes none of the ads' texts: it reads the vectors the uploads kept."""
    w = world(client)
    asked: list[str] = []

    class Watching:
        name, dim = default_encoder().name, default_encoder().dim

        def encode(self, texts: list[str]) -> np.ndarray:
            asked.extend(texts)
            return default_encoder().encode(texts)

    async def go() -> artifact.Manifest:
        r = open_redis(settings.redis_url or "", False)
        try:
            return await build_from_catalog(CatalogStore(r), settings.index_root, vectors=AdVectors(r, Watching()))
        finally:
            await r.aclose()
    m = asyncio.run(go())
    assert m.semantic is not None and m.semantic["encoder"] == default_encoder().name
    texts = {ad_text(to_domain(with_store(settings, lambda s, i=i: s.get_ad(w["aid"], i))))
             for i in (w["realty"], w["telecom"])}
    assert not texts & set(asked)


# --- live overlay ----------------------------------------------------------------------------

def test_a_new_ad_serves_with_its_semantic_signal_within_a_second(client: TestClient, build) -> None:
    """An ad created after the index was built is served, with a non-zero semantic signal, to an analysed
    page one second after its creation returned (the live feed polls every 0.2 s)."""
    pid, ph = new_publisher(client)
    aid, ah = new_advertiser(client)
    cid = new_campaign(client, ah)
    new_ad(client, ah, cid)  # telecom
    build()
    reload_index(client)
    w = {"pid": pid, "ph": ph}
    assert matched(client, w, SHORT_PAGE)["ads"] == []
    realty = new_ad(client, ah, cid, **REALTY_AD)["id"]
    time.sleep(1.0)
    body = matched(client, w, SHORT_PAGE)
    assert body["page_analysed"] is True
    assert realty in semantic_of(body) and semantic_of(body)[realty] > 0


def test_an_edited_ad_serves_with_its_new_texts_semantic_signal_within_a_second(client: TestClient, build) -> None:
    """One second after an edit returned, an analysed page is served the edited ad with the semantic signal
    of its new text: the one a rebuild of the catalog then gives it."""
    w = world(client)
    build()
    reload_index(client)
    before = matched(client, w, SHORT_PAGE)
    assert before["page_analysed"] is True and semantic_of(before).get(w["telecom"], 0.0) == 0
    r = client.patch(f"/v1/ads/{w['telecom']}", json=EDITED_TO_REALTY, headers=w["ah"])
    assert r.status_code == 200, r.text
    time.sleep(1.0)
    live = matched(client, w, SHORT_PAGE)
    assert live["page_analysed"] is True and w["telecom"] in semantic_of(live)
    assert semantic_of(live)[w["telecom"]] > 0
    build()
    reload_index(client)
    rebuilt = matched(client, w, SHORT_PAGE)
    assert rebuilt["page_analysed"] is True and rebuilt["index_version"] != before["index_version"]
    assert semantic_of(live)[w["telecom"]] == pytest.approx(semantic_of(rebuilt)[w["telecom"]], abs=0.01)


def test_a_rebuild_encodes_only_the_ads_whose_text_changed(client: TestClient, settings: Settings,
                                                           clean_redis: redis.Redis) -> None:
    """Once the ads' vectors are gone from Redis (their TTL passed), a rebuild encodes no unchanged ad (the
    index root's vector cache has them) and exactly the text of an ad changed without a kept vector. (A
    build also encodes the taxonomy's few dozen category texts, whatever the catalog's size.)"""
    w = world(client)
    asked: list[str] = []

    class Counting:
        name, dim = default_encoder().name, default_encoder().dim

        def encode(self, texts: list[str]) -> np.ndarray:
            asked.extend(texts)
            return default_encoder().encode(texts)

    def rebuild() -> artifact.Manifest:
        async def go() -> artifact.Manifest:
            r = open_redis(settings.redis_url or "", False)
            try:
                return await build_from_catalog(CatalogStore(r), settings.index_root, vectors=AdVectors(r, Counting()))
            finally:
                await r.aclose()
        return asyncio.run(go())

    def drop_kept_vectors() -> None:
        for name in clean_redis.scan_iter(match=keys.ad_vector("*", "*")):
            clean_redis.delete(name)

    def ad_texts() -> set[str]:
        return {ad_text(to_domain(a)) for a in with_store(settings, lambda s: s.all_ads())}

    rebuild()
    drop_kept_vectors()
    unchanged = ad_texts()
    asked.clear()
    rebuild()
    assert not unchanged & set(asked)
    edited = to_domain(with_store(settings, lambda s: s.update_ad(w["aid"], w["realty"], {"title": "学区房现房 拎包入住"})))
    assert ad_text(edited) not in unchanged
    drop_kept_vectors()
    asked.clear()
    m = rebuild()
    assert [t for t in asked if t in unchanged | ad_texts()] == [ad_text(edited)]
    assert m.semantic is not None and m.ad_count == 2

# --- analysed pages across processes and versions --------------------------------------------

def test_a_page_analysed_by_a_worker_is_served_from_its_profile_by_every_process(
        client: TestClient, build, settings: Settings, other_app: Callable[[], TestClient]) -> None:
    """A long page is answered on its first view and queued; once a worker stored its profile, another
    serving process answers it analysed, with semantic signals, and so does the first within its recheck
    interval."""
    w = world(client)
    build()
    reload_index(client)
    first = matched(client, w, LONG_PAGE)
    assert first["page_analysed"] is False and first["ads"]
    assert all(v == 0 for v in semantic_of(first).values())
    r = redis.Redis.from_url(settings.redis_url or "")
    try:
        wait_for(lambda: r.xlen(keys.ANALYSIS_QUEUE), lambda n: n == 1, timeout=3.0)
    finally:
        r.close()
    assert len(analyse_queued_pages(settings.redis_url or "")) == 1
    b = other_app()
    second = matched(b, w, LONG_PAGE)
    assert second["page_analysed"] is True and second["index_version"] == first["index_version"]
    assert semantic_of(second)[w["realty"]] > 0
    again = wait_for(lambda: matched(client, w, LONG_PAGE), lambda body: body["page_analysed"], timeout=3.0)
    assert again["page_analysed"] is True and semantic_of(again)[w["realty"]] > 0


def test_a_new_index_version_never_serves_a_ranking_cached_under_the_old_one(client: TestClient, build) -> None:
    """A page's analysed ranking cached under one version is not served once another version is loaded:
    an index without semantic rows answers it on its first view, and the next semantic version answers
    it analysed again from the page's profile."""
    w = world(client)
    v1 = build().version
    reload_index(client)
    one = matched(client, w, SHORT_PAGE)
    assert one["index_version"] == v1 and one["page_analysed"] is True
    assert semantic_of(one)[w["realty"]] > 0
    v2 = build(None).version
    reload_index(client)
    two = matched(client, w, SHORT_PAGE)
    assert two["index_version"] == v2 and two["ads"]
    assert two["page_analysed"] is False
    assert all(v == 0 for v in semantic_of(two).values())
    v3 = build().version
    reload_index(client)
    three = matched(client, w, SHORT_PAGE)
    assert three["index_version"] == v3 and three["page_analysed"] is True
    assert semantic_of(three)[w["realty"]] == pytest.approx(semantic_of(one)[w["realty"]], abs=1e-3)


def test_an_index_of_another_encoder_serves_without_the_semantic_signal(
        client: TestClient, build, caplog: pytest.LogCaptureFixture) -> None:
    """An index whose vectors came from another encoder is loaded and serves, but without the semantic
    signal: pages are answered on their first view, with a warning to rebuild."""
    w = world(client)
    with caplog.at_level(logging.WARNING, logger="service.serving.index_holder"):
        m = build(FakeEncoder(dim=512, name="another-encoder/9"))
        status = reload_index(client)
    assert status["version"] == m.version
    assert any("another-encoder/9" in r.getMessage() and "rebuild" in r.getMessage() for r in caplog.records)
    body = matched(client, w, SHORT_PAGE)
    assert body["index_version"] == m.version and body["ads"]
    assert body["page_analysed"] is False
    assert all(v == 0 for v in semantic_of(body).values())


# --- the analysis queue full, and the encoder off --------------------------------------------

def test_a_full_analysis_queue_never_fails_a_match(settings: Settings, build, clean_redis: redis.Redis) -> None:
    """With the analysis queue at its maximum (one page), distinct long pages keep being answered, on their
    first view, and the pages that did not fit are dropped and counted."""
    dropped = metrics.ANALYSIS_DROPPED.labels("queue_full")
    before = dropped._value.get()
    with TestClient(create_app(settings.model_copy(update={"analysis_queue_max": 1}))) as c:
        w = world(c)
        build()
        reload_index(c)
        for i in range(25):
            page = {"title": f"{LONG_PAGE['title']}（{i}）", "text": LONG_PAGE["text"] + f"第{i}期。"}
            body = matched(c, w, page)
            assert body["page_analysed"] is False and body["ads"]
        wait_for(lambda: dropped._value.get() - before, lambda n: n >= 24, timeout=3.0)
    assert clean_redis.xlen(keys.ANALYSIS_QUEUE) == 1
    assert dropped._value.get() - before == 24


def test_with_the_encoder_off_uploads_keep_no_vectors_and_pages_get_their_first_view(
        settings: Settings, build, clean_redis: redis.Redis) -> None:
    """With ADMATCH_SEMANTIC=false an upload keeps no vector, and even an index with semantic rows answers
    every page on its first view."""
    with TestClient(create_app(settings.model_copy(update={"semantic": False}))) as c:
        assert c.app.state.ctx.understanding is None  # type: ignore[attr-defined]
        w = world(c)
        assert list(clean_redis.scan_iter(match=keys.ad_vector("*", "*"))) == []
        m = build()
        assert m.semantic is not None
        reload_index(c)
        for page in (SHORT_PAGE, LONG_PAGE):
            body = matched(c, w, page)
            assert body["index_version"] == m.version and body["ads"]
            assert body["page_analysed"] is False
            assert all(v == 0 for v in semantic_of(body).values())
    assert clean_redis.xlen(keys.ANALYSIS_QUEUE) == 0

