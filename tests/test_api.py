"""The HTTP API through TestClient against a real Redis-protocol server (fixtures in conftest)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import opencc
import pytest
import redis
from fastapi.testclient import TestClient

from service.api import catalog_schemas, console_schemas, csv_upload, schemas, tag_schemas
from service.api.routes.ads import CSV_EXAMPLE
from service.demo.loader import DEMO_PUBLISHER_KEY, demo_pages
from service.openrtb import schemas as openrtb_schemas
from service.settings import Settings
from tests.conftest import auth
from tests.helpers import (
    ADMIN,
    REALTY_AD,
    REALTY_PAGE,
    TELECOM_PAGE,
    ad_body,
    assert_error,
    match,
    matched_ids,
    new_ad,
    new_advertiser,
    new_campaign,
    new_publisher,
    reload_index,
    wait_for,
    with_store,
)

BLOCK_WAIT = 2.0  # a pause must show in /v1/match within ~1 s; poll a little longer
RELOAD_WAIT = 20.0  # generous: index loads run in a thread on a shared CI machine


# ---- admin ----------------------------------------------------------------------------------------
def test_admin_creates_advertiser_whose_key_works(client: TestClient) -> None:
    """The admin creates an advertiser; the returned key authenticates as that advertiser."""
    r = client.post("/v1/advertisers", json={"name": "长联通信"}, headers=ADMIN)
    assert r.status_code == 201
    body = r.json()
    assert body["name"] == "长联通信" and body["id"] and body["api_key"]
    assert client.get("/v1/campaigns", headers=auth(body["api_key"])).json() == []


def test_admin_creates_publisher_whose_key_works(client: TestClient) -> None:
    """The admin creates a publisher; its key is accepted by /v1/match for its own id."""
    r = client.post("/v1/publishers", json={"name": "新闻早知道", "floor_fen": 10}, headers=ADMIN)
    assert r.status_code == 201
    body = r.json()
    assert body["floor_fen"] == 10 and body["api_key"]
    # No index is built yet: past authentication the answer is "not ready", not 401/403.
    assert_error(match(client, auth(body["api_key"]), body["id"], TELECOM_PAGE), 503, code="not_ready")


def test_every_tenant_gets_its_own_key(client: TestClient) -> None:
    """Two advertisers get different keys and see only their own campaigns."""
    _, a = new_advertiser(client, "甲")
    _, b = new_advertiser(client, "乙")
    assert a != b
    new_campaign(client, a, "甲的推广")
    assert [c["name"] for c in client.get("/v1/campaigns", headers=a).json()] == ["甲的推广"]
    assert client.get("/v1/campaigns", headers=b).json() == []


def test_api_keys_are_not_stored_in_plain_text(client: TestClient, clean_redis: redis.Redis) -> None:
    """No Redis key or value contains an issued API key; only its hash is kept."""
    r = client.post("/v1/advertisers", json={"name": "甲"}, headers=ADMIN)
    key = r.json()["api_key"]
    for k in clean_redis.scan_iter():
        assert key not in k
        if clean_redis.type(k) == "string":
            assert key not in (clean_redis.get(k) or "")


# ---- campaigns ------------------------------------------------------------------------------------
def test_campaign_create_get_and_list(client: TestClient) -> None:
    """A created campaign is returned with its fields, by id and in the list."""
    _, h = new_advertiser(client)
    r = client.post("/v1/campaigns", json={"name": "春季推广", "daily_budget_fen": 500000}, headers=h)
    assert r.status_code == 201
    cmp = r.json()
    assert cmp["status"] == "active" and cmp["daily_budget_fen"] == 500000 and cmp["total_budget_fen"] is None
    assert client.get(f"/v1/campaigns/{cmp['id']}", headers=h).json() == cmp
    assert client.get("/v1/campaigns", headers=h).json() == [cmp]


def test_campaign_patch_changes_only_given_fields(client: TestClient) -> None:
    """PATCH changes the fields sent, keeps the others and persists the result."""
    _, h = new_advertiser(client)
    cid = new_campaign(client, h, "旧名", daily_budget_fen=100, total_budget_fen=1000)
    r = client.patch(f"/v1/campaigns/{cid}", json={"name": "新名", "daily_budget_fen": None}, headers=h)
    assert r.status_code == 200
    got = client.get(f"/v1/campaigns/{cid}", headers=h).json()
    assert (got["name"], got["daily_budget_fen"], got["total_budget_fen"]) == ("新名", None, 1000)
    assert got == r.json()


def test_campaign_pause_and_resume_change_status(client: TestClient) -> None:
    """Pause sets a campaign's status to paused and resume sets it back to active."""
    _, h = new_advertiser(client)
    cid = new_campaign(client, h)
    assert client.post(f"/v1/campaigns/{cid}/pause", headers=h).json()["status"] == "paused"
    assert client.get(f"/v1/campaigns/{cid}", headers=h).json()["status"] == "paused"
    assert client.post(f"/v1/campaigns/{cid}/resume", headers=h).json()["status"] == "active"


def test_campaign_delete_removes_it_and_its_ads(client: TestClient) -> None:
    """Deleting a campaign removes it and every ad in it."""
    _, h = new_advertiser(client)
    cid = new_campaign(client, h)
    ad = new_ad(client, h, cid)
    assert client.delete(f"/v1/campaigns/{cid}", headers=h).status_code == 204
    assert_error(client.get(f"/v1/campaigns/{cid}", headers=h), 404, code="not_found")
    assert_error(client.get(f"/v1/ads/{ad['id']}", headers=h), 404)
    assert client.get("/v1/campaigns", headers=h).json() == []


# ---- ads ------------------------------------------------------------------------------------------
def test_ad_create_get_and_list(client: TestClient) -> None:
    """A created ad is returned with its fields, by id and in its campaign's list."""
    _, h = new_advertiser(client)
    cid = new_campaign(client, h)
    r = client.post(f"/v1/campaigns/{cid}/ads", json=ad_body(keyword_bids={"长话": 200}), headers=h)
    assert r.status_code == 201
    ad = r.json()
    assert ad["campaign_id"] == cid and ad["status"] == "active" and ad["bid_fen"] == 120
    assert ad["keywords"] == ["手机套餐", "长话", "市话", "漫游", "3g"] and ad["keyword_bids"] == {"长话": 200}
    assert client.get(f"/v1/ads/{ad['id']}", headers=h).json() == ad
    assert client.get(f"/v1/campaigns/{cid}/ads", headers=h).json() == [ad]


def test_duplicate_keywords_are_stored_once(client: TestClient) -> None:
    """Keywords repeated in one ad are kept once, in first-seen order."""
    _, h = new_advertiser(client)
    ad = new_ad(client, h, new_campaign(client, h), keywords=["漫游", "长话", "漫游", " 长话 "])
    assert ad["keywords"] == ["漫游", "长话"]


def test_ad_patch_changes_only_given_fields(client: TestClient) -> None:
    """PATCH on an ad changes the fields sent and persists them."""
    _, h = new_advertiser(client)
    ad = new_ad(client, h, new_campaign(client, h))
    r = client.patch(f"/v1/ads/{ad['id']}", json={"bid_fen": 250, "keywords": ["流量卡"]}, headers=h)
    assert r.status_code == 200
    got = client.get(f"/v1/ads/{ad['id']}", headers=h).json()
    assert (got["bid_fen"], got["keywords"], got["title"]) == (250, ["流量卡"], ad["title"])


def test_ad_delete_removes_it(client: TestClient) -> None:
    """A deleted ad is gone from GET and from its campaign's list."""
    _, h = new_advertiser(client)
    cid = new_campaign(client, h)
    ad = new_ad(client, h, cid)
    keep = new_ad(client, h, cid, title="另一条广告")
    assert client.delete(f"/v1/ads/{ad['id']}", headers=h).status_code == 204
    assert_error(client.get(f"/v1/ads/{ad['id']}", headers=h), 404)
    assert [a["id"] for a in client.get(f"/v1/campaigns/{cid}/ads", headers=h).json()] == [keep["id"]]


# ---- serving: pausing and deleting take effect without a rebuild --------------------------------
@dataclass
class Served:
    client: TestClient
    adv: dict[str, str]
    pub_id: str
    pub: dict[str, str]
    campaign: str
    telecom: str
    realty: str

    def ids(self, page: dict[str, Any]) -> list[str]:
        return matched_ids(self.client, self.pub, self.pub_id, page)


@pytest.fixture
def served(client: TestClient, build_index: Callable[[], Any]) -> Served:
    """A telecom ad and a real-estate ad in one campaign, indexed and loaded."""
    _, adv = new_advertiser(client)
    pub_id, pub = new_publisher(client)
    cid = new_campaign(client, adv)
    telecom = new_ad(client, adv, cid)["id"]
    realty = new_ad(client, adv, cid, **REALTY_AD)["id"]
    build_index()
    assert reload_index(client)["ad_count"] == 2
    s = Served(client, adv, pub_id, pub, cid, telecom, realty)
    assert s.ids(TELECOM_PAGE)[0] == telecom and s.ids(REALTY_PAGE)[0] == realty  # precondition
    return s


def test_paused_campaign_stops_serving_and_resumed_serves_again(served: Served) -> None:
    """A paused campaign's ads leave /v1/match within ~1 s without a rebuild; resuming brings them back."""
    c = served.client
    assert c.post(f"/v1/campaigns/{served.campaign}/pause", headers=served.adv).status_code == 200
    ids = wait_for(lambda: served.ids(TELECOM_PAGE), lambda ids: served.telecom not in ids, BLOCK_WAIT)
    assert served.telecom not in ids and served.realty not in ids
    assert c.post(f"/v1/campaigns/{served.campaign}/resume", headers=served.adv).status_code == 200
    ids = wait_for(lambda: served.ids(TELECOM_PAGE), lambda ids: bool(ids) and ids[0] == served.telecom, BLOCK_WAIT)
    assert ids[0] == served.telecom


def test_paused_ad_stops_serving_while_its_sibling_serves(served: Served) -> None:
    """Pausing one ad removes it from /v1/match within ~1 s; other ads of the campaign keep serving."""
    r = served.client.patch(f"/v1/ads/{served.telecom}", json={"status": "paused"}, headers=served.adv)
    assert r.status_code == 200
    ids = wait_for(lambda: served.ids(TELECOM_PAGE), lambda ids: served.telecom not in ids, BLOCK_WAIT)
    assert served.telecom not in ids
    assert served.ids(REALTY_PAGE)[0] == served.realty


def test_deleted_ad_stops_serving(served: Served) -> None:
    """A deleted ad leaves /v1/match within ~1 s, before any rebuild."""
    assert served.client.delete(f"/v1/ads/{served.telecom}", headers=served.adv).status_code == 204
    ids = wait_for(lambda: served.ids(TELECOM_PAGE), lambda ids: served.telecom not in ids, BLOCK_WAIT)
    assert served.telecom not in ids


def test_deleted_campaign_stops_serving(served: Served) -> None:
    """Deleting a campaign removes its ads from /v1/match within ~1 s."""
    assert served.client.delete(f"/v1/campaigns/{served.campaign}", headers=served.adv).status_code == 204
    ids = wait_for(lambda: served.ids(REALTY_PAGE), lambda ids: not ids, BLOCK_WAIT)
    assert ids == []


# ---- tenant isolation -----------------------------------------------------------------------------
ISOLATION_CALLS = [
    ("GET", "/v1/campaigns/{cid}", None),
    ("PATCH", "/v1/campaigns/{cid}", {"name": "被改了"}),
    ("DELETE", "/v1/campaigns/{cid}", None),
    ("POST", "/v1/campaigns/{cid}/pause", None),
    ("GET", "/v1/campaigns/{cid}/ads", None),
    ("POST", "/v1/campaigns/{cid}/ads", ad_body()),
    ("GET", "/v1/ads/{ad}", None),
    ("PATCH", "/v1/ads/{ad}", {"bid_fen": 999}),
    ("DELETE", "/v1/ads/{ad}", None),
]


@pytest.mark.parametrize("method,path,body", ISOLATION_CALLS, ids=[f"{m} {p}" for m, p, _ in ISOLATION_CALLS])
def test_other_advertisers_campaigns_and_ads_are_not_found(client: TestClient, method: str, path: str,
                                                           body: dict[str, Any] | None) -> None:
    """Advertiser B gets 404 for A's campaign and ad, and A's data is left unchanged."""
    _, a = new_advertiser(client, "甲")
    _, b = new_advertiser(client, "乙")
    cid = new_campaign(client, a)
    ad = new_ad(client, a, cid)
    before = (client.get(f"/v1/campaigns/{cid}", headers=a).json(), client.get(f"/v1/campaigns/{cid}/ads", headers=a).json())
    r = client.request(method, path.format(cid=cid, ad=ad["id"]), json=body, headers=b)
    assert_error(r, 404, code="not_found")
    after = (client.get(f"/v1/campaigns/{cid}", headers=a).json(), client.get(f"/v1/campaigns/{cid}/ads", headers=a).json())
    assert after == before


def test_other_advertisers_campaign_rejects_csv_upload(client: TestClient) -> None:
    """Advertiser B cannot upload ads into A's campaign, and none are stored."""
    _, a = new_advertiser(client, "甲")
    _, b = new_advertiser(client, "乙")
    cid = new_campaign(client, a)
    r = client.post(f"/v1/campaigns/{cid}/ads/csv", content=ads_csv_example(),
                    headers={**b, "Content-Type": "text/csv"})
    assert_error(r, 404)
    assert client.get(f"/v1/campaigns/{cid}/ads", headers=a).json() == []


def test_publisher_cannot_match_for_another_publisher(client: TestClient) -> None:
    """A publisher key asking for another publisher's id gets 403."""
    _, h = new_publisher(client, "甲媒体")
    other, _ = new_publisher(client, "乙媒体")
    assert_error(match(client, h, other, TELECOM_PAGE), 403, code="forbidden")


def test_advertiser_key_cannot_match(client: TestClient) -> None:
    """An advertiser key on /v1/match gets 403."""
    pid, _ = new_publisher(client)
    _, adv = new_advertiser(client)
    assert_error(match(client, adv, pid, TELECOM_PAGE), 403, code="forbidden")


@pytest.mark.parametrize("role", ["advertiser", "publisher"])
@pytest.mark.parametrize("path,body", [("/v1/advertisers", {"name": "冒名"}), ("/v1/publishers", {"name": "冒名"}),
                                       ("/v1/index/reload", None)])
def test_admin_endpoints_refuse_non_admin_keys(client: TestClient, role: str, path: str,
                                               body: dict[str, Any] | None) -> None:
    """Admin endpoints answer 403 to advertiser and publisher keys."""
    _, h = new_advertiser(client) if role == "advertiser" else new_publisher(client)
    assert_error(client.post(path, json=body, headers=h), 403, code="forbidden")


@pytest.mark.parametrize("who", ["admin", "publisher"])
def test_advertiser_endpoints_refuse_other_roles(client: TestClient, who: str) -> None:
    """Campaign endpoints answer 403 to admin and publisher keys."""
    h = ADMIN if who == "admin" else new_publisher(client)[1]
    assert_error(client.get("/v1/campaigns", headers=h), 403)
    assert_error(client.post("/v1/campaigns", json={"name": "x"}, headers=h), 403)


# ---- ops ------------------------------------------------------------------------------------------
def test_healthz_answers(client: TestClient) -> None:
    """/healthz answers 200 without authentication, index or not."""
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_running_app_picks_up_each_new_index_version(client: TestClient, build_index: Callable[[], Any]) -> None:
    """The running app turns ready and follows each newly published index version without a restart or reload call."""
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["index_loaded"] is False and r.json()["redis"] is True
    assert client.get("/v1/index/status").json()["loaded"] is False
    _, h = new_advertiser(client)
    cid = new_campaign(client, h)
    new_ad(client, h, cid)
    first = build_index()
    r = wait_for(lambda: client.get("/readyz"), lambda r: r.status_code == 200, RELOAD_WAIT)
    assert r.status_code == 200 and r.json()["status"] == "ready"
    st = client.get("/v1/index/status").json()
    assert (st["loaded"], st["version"], st["ad_count"]) == (True, first.version, 1)
    assert (st["dense_dim"], st["built_at"]) == (first.dense_dim, first.built_at)
    new_ad(client, h, cid, **REALTY_AD)
    second = build_index()
    assert second.version != first.version
    st = wait_for(lambda: client.get("/v1/index/status").json(), lambda s: s["version"] == second.version, RELOAD_WAIT)
    assert (st["version"], st["ad_count"]) == (second.version, 2)


def test_paused_ads_are_left_out_of_the_next_build(client: TestClient, settings: Settings) -> None:
    """An index build takes only active ads of active campaigns."""
    _, h = new_advertiser(client)
    live = new_campaign(client, h, "在投")
    paused = new_campaign(client, h, "暂停", status="paused")
    keep = new_ad(client, h, live)
    new_ad(client, h, live, status="paused")
    new_ad(client, h, paused)
    paused_later = new_ad(client, h, live, title="稍后暂停")
    client.patch(f"/v1/ads/{paused_later['id']}", json={"status": "paused"}, headers=h)
    servable = with_store(settings, lambda store: store.servable_ads())
    assert [a.id for a in servable] == [keep["id"]]


# ---- the demo catalog -----------------------------------------------------------------------------
def demo_match(client: TestClient, page: dict[str, Any]) -> list[dict[str, Any]]:
    r = match(client, auth(DEMO_PUBLISHER_KEY), "demo-news", page)
    assert r.status_code == 200, r.text
    return list(r.json()["ads"])


def test_demo_telecom_page_gets_a_telecom_plan_ad_first(demo: TestClient) -> None:
    """On the demo catalog a page about 3G calls and roaming gets a mobile-plan ad first."""
    ads = demo_match(demo, {"text": "3G 手机长话、市话、漫游一个价"})
    assert ads and ads[0]["campaign_id"] == "cmp-changlian-mobile"


def test_demo_realty_page_gets_a_real_estate_ad_first(demo: TestClient) -> None:
    """On the demo catalog a page about 楼盘、首付、房贷 gets a real-estate ad first."""
    ads = demo_match(demo, {"text": "城东楼盘集中开盘，首付比例下调，房贷利率创新低，刚需购房者积极看房。"})
    assert ads and ads[0]["campaign_id"] in {"cmp-huating-newhome", "cmp-anju-resale"}


def test_demo_traditional_article_gets_the_same_ads(demo: TestClient) -> None:
    """Every demo article written in Traditional characters gets the same ads as in Simplified."""
    s2t = opencc.OpenCC("s2t")
    for p in demo_pages():
        simplified = demo_match(demo, {"title": p["title"], "text": p["text"]})
        traditional = demo_match(demo, {"title": s2t.convert(p["title"]), "text": s2t.convert(p["text"])})
        assert simplified, p["id"]
        assert [(a["ad_id"], a["score"]) for a in traditional] == [(a["ad_id"], a["score"]) for a in simplified], p["id"]


def test_match_returns_at_most_slots_ads_with_matched_keywords(demo: TestClient) -> None:
    """/v1/match returns at most `slots` ads, each with the advertiser keywords the page matched."""
    r = match(demo, auth(DEMO_PUBLISHER_KEY), "demo-news", TELECOM_PAGE, slots=2)
    body = r.json()
    assert body["publisher_id"] == "demo-news"
    assert body["index_version"] == demo.get("/v1/index/status").json()["version"]
    assert len(body["ads"]) == 2
    first = body["ads"][0]
    assert first["score"] > 0 and not first["house_ad"]
    assert {"长话", "市话", "漫游"} <= set(first["matched_keywords"])
    assert len({a["impression_id"] for a in body["ads"]}) == 2


def test_irrelevant_page_gets_no_ads(demo: TestClient) -> None:
    """A page about nothing any advertiser bought gets an empty list."""
    assert demo_match(demo, {"text": "今天天气晴朗，适合去公园散步，看看花草树木。"}) == []


def test_irrelevant_page_gets_the_publishers_house_ad(demo: TestClient) -> None:
    """A publisher with a fallback ad gets it, marked as a house ad, when nothing is relevant."""
    fallback = {"title": "下载新闻客户端", "landing_url": "https://example.com/app"}
    pid, h = new_publisher(demo, "有备用广告的媒体", fallback_ad=fallback)
    [ad] = match(demo, h, pid, {"text": "今天天气晴朗，适合去公园散步。"}).json()["ads"]
    assert ad["house_ad"] is True and ad["title"] == fallback["title"]


# ---- OpenAPI --------------------------------------------------------------------------------------
def ads_csv_example() -> bytes:
    return CSV_EXAMPLE.encode("utf-8")


def request_bodies(spec: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    out = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for ctype, media in op.get("requestBody", {}).get("content", {}).items():
                out.append((method.upper(), path, ctype, media))
    return out


def test_openapi_has_an_example_for_every_request_body(client: TestClient) -> None:
    """Every endpoint that takes a body documents a whole example of it in /openapi.json."""
    spec = client.get("/openapi.json").json()
    bodies = request_bodies(spec)
    assert len(bodies) >= 8
    missing = []
    for method, path, ctype, media in bodies:
        schema = media.get("schema", {})
        if "$ref" in schema:
            schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        if not (media.get("example") or media.get("examples") or schema.get("example") or schema.get("examples")):
            missing.append(f"{method} {path} ({ctype})")
    assert missing == []


def test_openapi_examples_are_valid_requests(client: TestClient) -> None:
    """Every documented JSON body example passes its own schema; the CSV example parses."""
    spec = client.get("/openapi.json").json()
    for method, path, ctype, media in request_bodies(spec):
        ref = media.get("schema", {}).get("$ref")
        if ctype == "application/json" and ref:
            name = ref.rsplit("/", 1)[-1]
            model = (getattr(schemas, name, None) or getattr(catalog_schemas, name, None)
                     or getattr(tag_schemas, name, None)
                     or getattr(console_schemas, name, None) or getattr(openrtb_schemas, name))
            examples = list(spec["components"]["schemas"][name].get("examples", []))
            examples += [media["example"]] if "example" in media else []
            for example in examples:
                model.model_validate(example)
        elif ctype == "text/csv":
            assert csv_upload.parse(media["example"].encode("utf-8")), f"{method} {path}"
