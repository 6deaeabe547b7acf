"""Live catalog updates: keyword sets created, edited, paused or deleted through the API serve (or
stop) without a rebuild, and a rebuild afterwards takes over cleanly."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from index import builder
from index.delta import delta_catalog
from matching.analyze import make_page
from matching.live import LiveMatcher
from matching.matcher import Matcher
from matching.types import Ad
from tests.conftest import ADMIN_KEY, auth
from tests.servers import wait_for

HOUSE = Ad(id="house", campaign_id="c", advertiser_id="a", title="学区房新盘", keywords=("楼盘", "学区房", "首付"), bid_fen=100)
FOOD = Ad(id="food", campaign_id="c", advertiser_id="a", title="火锅外卖", keywords=("火锅", "外卖", "餐厅"), bid_fen=100)
HOUSE_PAGE = make_page(title="楼市观察", text="多个楼盘推出学区房，首付比例下调，购房者关注房贷利率。")
FOOD_PAGE = make_page(title="美食", text="这家火锅餐厅推出外卖服务，麻辣锅底很受欢迎。")
PHONE_PAGE = make_page(title="手机评测", text="这款折叠屏手机的芯片和续航表现出色，5g信号稳定。")


def ids(cands: list[Any]) -> list[str]:
    return [c.ad.id for c in cands]


def test_live_matcher_without_changes_is_the_snapshot_matcher() -> None:
    base = Matcher(builder.build([HOUSE, FOOD]))
    live = LiveMatcher(base)
    for page in (HOUSE_PAGE, FOOD_PAGE):
        terms = base.analyze(page)
        assert live.rank(terms, 5) == base.rank(terms, 5)


def test_changed_ads_replace_theirs_and_new_ones_join() -> None:
    """A new ad on a topic the snapshot never saw is served; an edited ad serves with its new
    keywords only; a removed ad is gone; nothing appears twice."""
    catalog = builder.build([HOUSE, FOOD])
    base = Matcher(catalog)
    phone = Ad(id="phone", campaign_id="c", advertiser_id="a", title="折叠屏手机", keywords=("折叠屏", "手机", "芯片"),
               bid_fen=100)
    food_now_phone = Ad(id="food", campaign_id="c", advertiser_id="a", title="手机续航", keywords=("续航", "5g"),
                        bid_fen=100)
    delta = Matcher(delta_catalog(catalog, [phone, food_now_phone]))
    live = LiveMatcher(base, delta, frozenset({"phone", "food", "house"}))  # house: deleted
    assert "折叠屏" in catalog.tokenizer.user_words  # the dictionary learnt the new keyword
    phone_ranked = live.rank(live.analyze(PHONE_PAGE), 5)
    assert ids(phone_ranked)[0] == "phone"
    assert set(ids(phone_ranked)) == {"phone", "food"}
    assert "折叠屏" in phone_ranked[0].matched_keywords
    assert live.rank(live.analyze(FOOD_PAGE), 5) == []  # food's old keywords no longer serve
    assert live.rank(live.analyze(HOUSE_PAGE), 5) == []  # house was removed
    assert ids(base.rank(base.analyze(HOUSE_PAGE), 5))[0] == "house"  # the snapshot itself is untouched


def test_new_keyword_unknown_to_the_vocabulary_still_scores() -> None:
    """A keyword no ad of the snapshot had gets the keyword signal at the highest catalog idf."""
    catalog = builder.build([HOUSE, FOOD])
    novel = Ad(id="novel", campaign_id="c", advertiser_id="a", title="量子咖啡机", keywords=("量子咖啡机",), bid_fen=100)
    live = LiveMatcher(Matcher(catalog), Matcher(delta_catalog(catalog, [novel])), frozenset({"novel"}))
    [c] = live.rank(live.analyze(make_page(title="量子咖啡机开售", text="量子咖啡机今天开售，量子咖啡机售价亲民。")), 5)
    assert c.ad.id == "novel" and c.matched_keywords == ("量子咖啡机",) and c.signals.keyword > 0.5


def _match(client: TestClient, pub: dict[str, Any], page: dict[str, str]) -> list[str]:
    r = client.post("/v1/match", headers=auth(pub["api_key"]), json={"publisher_id": pub["id"], "page": page,
                                                                     "slots": 5})
    assert r.status_code == 200, r.text
    return [a["ad_id"] for a in r.json()["ads"]]


def _within_a_second(check: Callable[[], bool]) -> bool:
    """The change must be visible one second after the API call returned (feed interval 0.2 s)."""
    time.sleep(1.0)
    return check()


HOUSE_WIRE = {"title": HOUSE_PAGE.title, "text": HOUSE_PAGE.body}
PHONE_WIRE = {"title": PHONE_PAGE.title, "text": PHONE_PAGE.body}


def test_api_changes_serve_within_a_second_and_survive_a_rebuild(client: TestClient, build_index) -> None:
    pub = client.post("/v1/publishers", json={"name": "站", "floor_fen": 1}, headers=auth(ADMIN_KEY)).json()
    adv = client.post("/v1/advertisers", json={"name": "商"}, headers=auth(ADMIN_KEY)).json()
    h = auth(adv["api_key"])
    cmp = client.post("/v1/campaigns", json={"name": "c"}, headers=h).json()
    house = client.post(f"/v1/campaigns/{cmp['id']}/ads", headers=h, json={
        "title": HOUSE.title, "keywords": list(HOUSE.keywords), "bid_fen": 100,
        "landing_url": "https://example.com/h"}).json()
    build_index()
    client.post("/v1/index/reload", headers=auth(ADMIN_KEY))
    assert _match(client, pub, HOUSE_WIRE) == [house["id"]]
    assert _match(client, pub, PHONE_WIRE) == []

    # created: a new keyword set serves without a rebuild
    phone = client.post(f"/v1/campaigns/{cmp['id']}/ads", headers=h, json={
        "title": "折叠屏手机", "keywords": ["折叠屏", "手机", "芯片"], "bid_fen": 100,
        "landing_url": "https://example.com/p"}).json()
    assert _within_a_second(lambda: _match(client, pub, PHONE_WIRE) == [phone["id"]])
    status = client.get("/v1/index/status").json()
    assert status["live_changes"] == 1 and status["ad_count"] == 1

    # edited: the house ad now sells phones; its old keywords stop serving
    r = client.patch(f"/v1/ads/{house['id']}", headers=h, json={"title": "长续航手机", "keywords": ["续航", "5g"]})
    assert r.status_code == 200, r.text
    assert _within_a_second(lambda: _match(client, pub, HOUSE_WIRE) == []
                            and set(_match(client, pub, PHONE_WIRE)) == {phone["id"], house["id"]})

    # deleted, and a paused campaign's new ad: neither serves; resumed: the new ad serves
    assert client.delete(f"/v1/ads/{phone['id']}", headers=h).status_code == 204
    paused = client.post("/v1/campaigns", json={"name": "p", "status": "paused"}, headers=h).json()
    later = client.post(f"/v1/campaigns/{paused['id']}/ads", headers=h, json={
        "title": "新楼盘", "keywords": ["楼盘", "学区房"], "bid_fen": 100, "landing_url": "https://example.com/l"}).json()
    assert _within_a_second(lambda: _match(client, pub, PHONE_WIRE) == [house["id"]]
                            and _match(client, pub, HOUSE_WIRE) == [])
    assert client.post(f"/v1/campaigns/{paused['id']}/resume", headers=h).status_code == 200
    assert _within_a_second(lambda: _match(client, pub, HOUSE_WIRE) == [later["id"]])

    # the nightly rebuild contains every change; once loaded the overlay is empty and the same ads lead
    built = build_index()
    wait_for(lambda: client.get("/v1/index/status").json()["version"] == built.version, "new index not loaded")
    status = client.get("/v1/index/status").json()
    assert status["live_changes"] == 0 and status["ad_count"] == 2
    assert _match(client, pub, HOUSE_WIRE)[0] == later["id"]
    assert _match(client, pub, PHONE_WIRE)[0] == house["id"]


def test_catalog_replaced_underneath_drops_the_overlay(client: TestClient, build_index, clean_redis) -> None:
    """When the catalog version goes back (Redis restored from an older backup or replaced), the
    live overlay may describe ads that no longer exist: it is dropped, the built version serves."""
    pub = client.post("/v1/publishers", json={"name": "站", "floor_fen": 1}, headers=auth(ADMIN_KEY)).json()
    adv = client.post("/v1/advertisers", json={"name": "商"}, headers=auth(ADMIN_KEY)).json()
    h = auth(adv["api_key"])
    cmp = client.post("/v1/campaigns", json={"name": "c"}, headers=h).json()
    client.post(f"/v1/campaigns/{cmp['id']}/ads", headers=h, json={
        "title": HOUSE.title, "keywords": list(HOUSE.keywords), "bid_fen": 100, "landing_url": "https://example.com/h"})
    build_index()
    client.post("/v1/index/reload", headers=auth(ADMIN_KEY))
    for i in range(3):  # live changes push the catalog version up
        client.post(f"/v1/campaigns/{cmp['id']}/ads", headers=h, json={
            "title": f"折叠屏手机{i}", "keywords": ["折叠屏", "手机"], "bid_fen": 100, "landing_url": "https://example.com/p"})
    assert _within_a_second(lambda: client.get("/v1/index/status").json()["live_changes"] == 3)
    clean_redis.set("am:{g}:catalog:version", 1)  # as after restoring an older snapshot
    assert _within_a_second(lambda: client.get("/v1/index/status").json()["live_changes"] == 0)
    assert client.get("/v1/index/status").json()["ad_count"] == 1
    assert _match(client, pub, PHONE_WIRE) == []
