"""The ad tag over HTTP (no browser): its script, site tokens and origins, rate limits, brand
controls on /v1/match and the tag alike, viewable-impression beacons in the reports."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.conftest import ADMIN_KEY, TEST_REDIS_TIMEOUT_MS, auth
from tests.helpers import (
    ADMIN,
    REALTY_AD,
    TELECOM_PAGE,
    matched_ids,
    new_ad,
    new_advertiser,
    new_campaign,
    new_publisher,
    reload_index,
    wait_for,
)

ORIGIN = "https://news.example.com"
TELECOM_TEXT = TELECOM_PAGE["text"] * 3


@dataclass
class Tagged:
    client: TestClient
    pub_id: str
    pub: dict[str, str]
    token: str
    telecom_adv: str
    telecom_campaign: str
    telecom_ad: str
    other_ad: str


def lean_settings(redis_url: str, tmp_path: Path, **extra: Any) -> Settings:
    return Settings(redis_url=redis_url, data_dir=tmp_path / "data", admin_key=ADMIN_KEY, index_poll_seconds=0.2,
                    semantic=False, analysis_enabled=False, impression_flush_seconds=0.0,
                    redis_timeout_ms=TEST_REDIS_TIMEOUT_MS, _env_file=None, **extra)  # type: ignore[call-arg]


@pytest.fixture
def tagged(redis_url: str, clean_redis: redis.Redis, tmp_path: Path,
           build_index: Callable[[], Any]) -> Iterator[Tagged]:
    with TestClient(create_app(lean_settings(redis_url, tmp_path, tag_requests_per_minute_per_ip=5))) as client:
        pub_id, pub = new_publisher(client)
        r = client.post("/v1/sites", json={"name": "新闻早知道", "origins": [ORIGIN + ":443/"]}, headers=pub)
        assert r.status_code == 201, r.text
        adv_id, adv = new_advertiser(client)
        cmp = new_campaign(client, adv)
        ad = new_ad(client, adv, cmp, landing_url="https://shop.changlian.cn/3g")
        other_id, other = new_advertiser(client, "另一家通信")
        other_ad = new_ad(client, other, new_campaign(client, other), title="另一家手机套餐 长话市话更便宜", bid_fen=100,
                          landing_url="https://www.other-telecom.com/x")
        new_ad(client, adv, cmp, **REALTY_AD)
        build_index()
        reload_index(client)
        yield Tagged(client, pub_id, pub, r.json()["token"], adv_id, cmp, ad["id"], other_ad["id"])


def tag_match(t: Tagged, origin: str | None = ORIGIN, token: str | None = None, text: str = TELECOM_TEXT,
              headers: dict[str, str] | None = None, ip: str | None = None) -> Any:
    h = {"Content-Type": "text/plain;charset=UTF-8", **(headers or {})}
    if origin:
        h["Origin"] = origin
    body = {"site": token or t.token, "slots": 3, "page": {"url": ORIGIN + "/a/1", "title": TELECOM_PAGE["title"],
                                                          "text": text}}
    return t.client.post("/v1/tag/match", content=json.dumps(body, ensure_ascii=False).encode(), headers=h)


def test_tag_script_is_small_cacheable_and_versioned(client: TestClient) -> None:
    """/v1/tag.js is JavaScript under 10 KB gzipped, cacheable publicly, with an ETag answering 304."""
    raw = resources.files("service.tag").joinpath("static/tag.js").read_bytes()
    assert len(gzip.compress(raw)) <= 10 * 1024
    r = client.get("/v1/tag.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert r.content == raw  # httpx undoes the gzip encoding
    assert "public" in r.headers["cache-control"] and "max-age=" in r.headers["cache-control"]
    assert r.headers["x-admatch-tag-version"] == "1"
    again = client.get("/v1/tag.js", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    assert "innerHTML" not in raw.decode() and "document.cookie" not in raw.decode()
    assert "localStorage" not in raw.decode() and "sessionStorage" not in raw.decode()


def test_site_token_is_created_by_the_publisher_with_normalised_origins(tagged: Tagged) -> None:
    """A publisher registers a site; origins are stored in one spelling; bad ones are refused by field."""
    sites = tagged.client.get("/v1/sites", headers=tagged.pub).json()
    assert [s["origins"] for s in sites] == [[ORIGIN]]
    assert f'data-site="{tagged.token}"' in sites[0]["snippet"]
    bad = tagged.client.post("/v1/sites", json={"name": "x", "origins": ["news.example.com/path"]}, headers=tagged.pub)
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"].startswith("origins")
    assert tagged.client.post("/v1/sites", json={"name": "x", "origins": [ORIGIN]}, headers=ADMIN).status_code == 403


def test_registered_origin_gets_ads_with_cors_for_that_origin_only(tagged: Tagged) -> None:
    """The tag's text/plain request from a registered origin gets ads, allowed by CORS for that origin."""
    r = tag_match(tagged)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["label"] == "广告" and body["ads"]
    assert r.headers["access-control-allow-origin"] == ORIGIN and "Origin" in r.headers["vary"]
    ad = body["ads"][0]
    assert ad["click_url"].startswith("http://testserver/v1/click/")
    assert ad["view_url"].startswith("http://testserver/v1/view/")
    assert ad["domain"] in ("shop.changlian.cn", "other-telecom.com")


def test_referer_stands_in_for_a_missing_origin(tagged: Tagged) -> None:
    """Without Origin, the Referer's origin is checked."""
    r = tag_match(tagged, origin=None, headers={"Referer": ORIGIN + "/a/1?x=1"})
    assert r.status_code == 200 and r.json()["ads"]


@pytest.mark.parametrize("origin", ["https://evil.example.com", "http://news.example.com", "https://news.example.com:8443"])
def test_unregistered_origin_gets_no_ads_and_a_reason(tagged: Tagged, origin: str) -> None:
    """Another origin (host, scheme or port) is refused with 403 naming it; no ads are returned."""
    r = tag_match(tagged, origin=origin)
    assert r.status_code == 403
    assert origin in r.json()["detail"] and "ads" not in r.json()


def test_no_origin_and_unknown_token_are_refused(tagged: Tagged) -> None:
    assert tag_match(tagged, origin=None).status_code == 403
    r = tag_match(tagged, token="st_madeup")
    assert r.status_code == 403 and "not registered" in r.json()["detail"]


def test_bad_tag_body_is_a_422_naming_the_field(tagged: Tagged) -> None:
    r = tagged.client.post("/v1/tag/match", content=b'{"site": "x", "slots": 99, "page": {"text": "a"}}',
                           headers={"Origin": ORIGIN, "Content-Type": "text/plain"})
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "slots"
    assert tagged.client.post("/v1/tag/match", content=b"not json", headers={"Origin": ORIGIN}).status_code == 422


def test_origin_removed_from_a_site_stops_serving(tagged: Tagged) -> None:
    """Replacing a site's origins applies at once in this process (within 1 s elsewhere)."""
    r = tagged.client.patch(f"/v1/sites/{tagged.token}", json={"origins": ["https://m.example.com"]}, headers=tagged.pub)
    assert r.status_code == 200
    assert tag_match(tagged).status_code == 403
    assert tag_match(tagged, origin="https://m.example.com").status_code == 200


def test_tag_requests_are_rate_limited_per_client_ip(tagged: Tagged) -> None:
    """Past the per-IP limit a minute (5 here), the tag gets 429 with Retry-After."""
    codes = [tag_match(tagged).status_code for _ in range(7)]
    assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]


def _ids(t: Tagged) -> list[str]:
    return matched_ids(t.client, t.pub, t.pub_id, {"title": TELECOM_PAGE["title"], "text": TELECOM_TEXT})


@pytest.mark.parametrize("controls", [
    {"blocked_advertisers": ["ADV"]},
    {"blocked_domains": ["changlian.cn"]},
    {"blocked_domains": ["https://WWW.changlian.cn/"]},
])
def test_blocked_advertiser_or_domain_never_shows(tagged: Tagged, controls: dict[str, list[str]]) -> None:
    """A blocked advertiser, or its landing domain (subdomains too), leaves /v1/match and the tag."""
    assert tagged.telecom_ad in _ids(tagged)
    body = {k: [tagged.telecom_adv if v == "ADV" else v for v in vs] for k, vs in controls.items()}
    r = tagged.client.patch("/v1/controls", json=body, headers=tagged.pub)
    assert r.status_code == 200, r.text
    ids = _ids(tagged)
    assert tagged.telecom_ad not in ids and tagged.other_ad in ids
    assert all("changlian" not in a["domain"] for a in tag_match(tagged).json()["ads"])


def test_blocked_category_removes_ads_of_it_and_its_children(tagged: Tagged) -> None:
    """Blocking tier-1 通信 (80DV8O) removes every telecom ad; the page then gets none of them."""
    assert _ids(tagged)
    r = tagged.client.patch("/v1/controls", json={"blocked_categories": ["80DV8O"]}, headers=tagged.pub)
    assert r.status_code == 200 and r.json()["blocked_categories"] == ["80DV8O"]
    assert _ids(tagged) == [] or all(i not in (tagged.telecom_ad, tagged.other_ad) for i in _ids(tagged))
    bad = tagged.client.patch("/v1/controls", json={"blocked_categories": ["nope"]}, headers=tagged.pub)
    assert bad.status_code == 422 and "blocked_categories" in bad.json()["fields"][0]["field"]


def test_label_text_is_the_publishers(tagged: Tagged) -> None:
    assert tagged.client.patch("/v1/controls", json={"ad_label": "廣告"}, headers=tagged.pub).status_code == 200
    assert tag_match(tagged).json()["label"] == "廣告"


def _report_views(t: Tagged) -> tuple[int, int, float, int]:
    cmp = t.client.get(f"/v1/reports/campaigns/{t.telecom_campaign}", headers=ADMIN).json()["totals"]
    pub = t.client.get(f"/v1/reports/publishers/{t.pub_id}", headers=t.pub).json()["totals"]
    return cmp["viewable_impressions"], cmp["impressions"], cmp["viewability"], pub["viewable_impressions"]


def test_view_beacon_counts_a_viewable_impression_once(tagged: Tagged) -> None:
    """The view URL counts its impression once however often it is sent; reports show viewability."""
    ads = tag_match(tagged).json()["ads"]
    mine = [a for a in ads if a["domain"] == "shop.changlian.cn"]
    assert mine
    for _ in range(3):
        assert tagged.client.post(mine[0]["view_url"].removeprefix("http://testserver")).status_code == 204
    views, imps, viewability, pub_views = _report_views(tagged)
    assert views == 1 and imps >= 1 and viewability == round(1 / imps, 6)
    assert pub_views == sum(1 for a in ads if a["domain"] == "shop.changlian.cn")


def test_forged_view_beacon_is_refused(tagged: Tagged) -> None:
    r = tagged.client.post("/v1/view/AAAAforged")
    assert r.status_code == 400
    assert _report_views(tagged)[0] == 0


def test_match_response_names_the_advertiser_domain_and_view_url(tagged: Tagged) -> None:
    r = tagged.client.post("/v1/match", json={"publisher_id": tagged.pub_id, "page": TELECOM_PAGE}, headers=tagged.pub)
    ad = next(a for a in r.json()["ads"] if a["ad_id"] == tagged.telecom_ad)
    assert ad["adomain"] == "shop.changlian.cn" and ad["view_url"].endswith(ad["click_url"].rsplit("/", 1)[1])


def test_demo_pages_are_served_only_in_demo_mode(redis_url: str, clean_redis: redis.Redis, tmp_path: Path) -> None:
    with TestClient(create_app(lean_settings(redis_url, tmp_path))) as c:
        assert c.get("/demo/article/ev-sales").status_code == 404
    with TestClient(create_app(lean_settings(redis_url, tmp_path, demo_pages=True))) as c:
        for slug, lang in (("ev-sales", "zh-Hans"), ("ev-sales-hant", "zh-Hant")):
            r = c.get(f"/demo/article/{slug}")
            assert r.status_code == 200 and f'lang="{lang}"' in r.text
            assert r.text.count("data-admatch-slot") == 2 and 'src="/v1/tag.js" data-site="demo-site-token"' in r.text


def test_admin_key_is_not_a_site_token(tagged: Tagged) -> None:
    assert tag_match(tagged, token=ADMIN_KEY).status_code == 403
    assert tagged.client.get("/v1/controls", headers=auth(ADMIN_KEY)).status_code == 403


def test_controls_and_origins_reach_another_process_within_its_lookup_ttl(
        tagged: Tagged, redis_url: str, tmp_path: Path) -> None:
    """Another serving process (its own app, the same Redis) applies a control changed elsewhere
    once its one-second publisher and site lookups expire, without a restart."""
    with TestClient(create_app(lean_settings(redis_url, tmp_path))) as other:
        page = {"title": TELECOM_PAGE["title"], "text": TELECOM_TEXT}
        assert tagged.telecom_ad in matched_ids(other, tagged.pub, tagged.pub_id, page)  # lookups cached now
        body = {"site": tagged.token, "slots": 3, "page": {"text": TELECOM_TEXT}}
        assert other.post("/v1/tag/match", content=json.dumps(body).encode(), headers={"Origin": ORIGIN}).status_code == 200
        assert tagged.client.patch("/v1/controls", json={"blocked_advertisers": [tagged.telecom_adv]},
                                   headers=tagged.pub).status_code == 200
        assert tagged.client.patch(f"/v1/sites/{tagged.token}", json={"origins": ["https://m.example.com"]},
                                   headers=tagged.pub).status_code == 200
        ids = wait_for(lambda: matched_ids(other, tagged.pub, tagged.pub_id, page),
                       lambda ids: tagged.telecom_ad not in ids, timeout=3.0)
        assert tagged.telecom_ad not in ids
        refused = wait_for(lambda: other.post("/v1/tag/match", content=json.dumps(body).encode(),
                                              headers={"Origin": ORIGIN}).status_code, lambda c: c == 403, timeout=3.0)
        assert refused == 403
