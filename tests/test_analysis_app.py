"""Page analysis in the app: every process's offers reach the shared queue (the last ones at
shutdown too), it can be turned off, and the backlog shows in GET /v1/index/status, /metrics and
`admatch index status`."""

from __future__ import annotations

import json

import redis
from fastapi.testclient import TestClient

from matching.analyze import make_page
from service.app import create_app
from service.settings import Settings
from service.store import keys
from tests.conftest import ADMIN_KEY
from tests.helpers import REALTY_PAGE, wait_for
from tests.servers import admatch

PAGE = make_page(title=REALTY_PAGE["title"], text=REALTY_PAGE["text"])


def test_a_page_offered_in_the_app_reaches_the_shared_queue(client: TestClient, clean_redis: redis.Redis) -> None:
    """A page offered through the app's context is in the Redis stream within a fraction of a second."""
    client.app.state.ctx.analysis.offer("page-1", PAGE)  # type: ignore[attr-defined]
    assert wait_for(lambda: clean_redis.xlen(keys.ANALYSIS_QUEUE), lambda n: n == 1, timeout=2.0) == 1
    [(_, fields)] = clean_redis.xrange(keys.ANALYSIS_QUEUE)
    assert (fields["k"], fields["ti"], fields["b"]) == ("page-1", PAGE.title, PAGE.body)


def test_pages_offered_just_before_shutdown_are_queued(settings: Settings, clean_redis: redis.Redis) -> None:
    """Shutting down sends the pages offered since the last flush instead of dropping them."""
    with TestClient(create_app(settings)) as c:
        for i in range(5):
            c.app.state.ctx.analysis.offer(f"page-{i}", PAGE)  # type: ignore[attr-defined]
    assert clean_redis.xlen(keys.ANALYSIS_QUEUE) == 5


def test_analysis_can_be_turned_off(settings: Settings, clean_redis: redis.Redis) -> None:
    """With ADMATCH_ANALYSIS_ENABLED false the app holds no queue or profile store and reports no backlog."""
    with TestClient(create_app(settings.model_copy(update={"analysis_enabled": False}))) as c:
        ctx = c.app.state.ctx  # type: ignore[attr-defined]
        assert ctx.analysis is None and ctx.profiles is None
        assert c.get("/v1/index/status").json()["analysis"] is None
    assert not clean_redis.exists(keys.ANALYSIS_QUEUE)


def test_status_and_metrics_show_the_backlog(client: TestClient, clean_redis: redis.Redis) -> None:
    """GET /v1/index/status and /metrics show the queue's length, pending entries and live workers."""
    for i in range(3):
        clean_redis.xadd(keys.ANALYSIS_QUEUE, {"k": f"p{i}", "ti": "t", "b": "b", "t": "0"})
    clean_redis.xreadgroup(keys.ANALYSIS_GROUP, "w1", {keys.ANALYSIS_QUEUE: ">"}, count=1)
    status = client.get("/v1/index/status").json()
    assert status["analysis"] == {"length": 3, "pending": 1, "consumers": 1}
    text = client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).text
    assert "admatch_analysis_backlog_pages 3.0" in text
    assert "admatch_analysis_pending_pages 1.0" in text
    assert "admatch_analysis_offered_total" in text


def test_index_status_command_shows_the_backlog(settings, build_index, clean_redis: redis.Redis) -> None:
    """`admatch index status` prints the analysis queue's length, pending entries and live workers."""
    build_index()
    clean_redis.xgroup_create(keys.ANALYSIS_QUEUE, keys.ANALYSIS_GROUP, id="0", mkstream=True)
    clean_redis.xadd(keys.ANALYSIS_QUEUE, {"k": "p", "ti": "t", "b": "b", "t": "0"})
    done = admatch(["index", "status"], {"ADMATCH_REDIS_URL": settings.redis_url,
                                         "ADMATCH_INDEX_DIR": str(settings.index_root)})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["analysis"] == {"length": 1, "pending": 0, "consumers": 0}
