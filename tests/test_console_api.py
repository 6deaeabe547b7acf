"""The API capabilities the web console drives (issue 17), through the real app and Redis: who a key
is (/v1/me), the admin's tenant lists, a CSV upload's dry run, an advertiser's page preview and the
publisher report's fill rate."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.conftest import auth
from tests.helpers import (
    ADMIN,
    REALTY_AD,
    REALTY_PAGE,
    TELECOM_PAGE,
    assert_error,
    match,
    new_ad,
    new_advertiser,
    new_campaign,
    new_publisher,
    reload_index,
    wait_for,
)

UNRELATED_PAGE = {"title": "周末天气", "text": "本周末多云转晴，气温回升，适合户外踏青和登山。"}


# ---- /v1/me -------------------------------------------------------------------------------------
def test_me_names_the_role_id_and_name_of_every_kind_of_key(client: TestClient) -> None:
    """An advertiser, a publisher and the admin each get their role, id and name; nothing else."""
    aid, adv = new_advertiser(client, "华东房产集团")
    pid, pub = new_publisher(client, "新闻早知道")
    assert client.get("/v1/me", headers=adv).json() == {"role": "advertiser", "id": aid, "name": "华东房产集团"}
    assert client.get("/v1/me", headers=pub).json() == {"role": "publisher", "id": pid, "name": "新闻早知道"}
    assert client.get("/v1/me", headers=ADMIN).json() == {"role": "admin", "id": "admin", "name": "admin"}


def test_me_refuses_a_missing_or_unknown_key(client: TestClient) -> None:
    """No key and a wrong key are both 401 with a JSON error."""
    assert_error(client.get("/v1/me"), 401, code="unauthorized")
    assert_error(client.get("/v1/me", headers=auth("am_adv_not-a-key")), 401, code="unauthorized")


# ---- admin lists --------------------------------------------------------------------------------
def test_admin_lists_advertisers_and_publishers_with_counts_and_never_keys(client: TestClient) -> None:
    """The lists hold every tenant by id with its name, creation time and campaign / site count;
    no API key appears in them."""
    aid, adv = new_advertiser(client, "甲广告主")
    aid2, _ = new_advertiser(client, "乙广告主")
    new_campaign(client, adv, "一")
    new_campaign(client, adv, "二")
    pid, pub = new_publisher(client, "甲媒体", floor_fen=7)
    assert client.post("/v1/sites", json={"name": "主站", "origins": ["https://news.example.com"]},
                       headers=pub).status_code == 201
    r = client.get("/v1/advertisers", headers=ADMIN)
    assert r.status_code == 200, r.text
    got = {a["id"]: a for a in r.json()}
    assert set(got) == {aid, aid2}
    assert (got[aid]["name"], got[aid]["campaigns"], got[aid2]["campaigns"]) == ("甲广告主", 2, 0)
    assert got[aid]["created_at"][:4].isdigit()
    r = client.get("/v1/publishers", headers=ADMIN)
    assert r.status_code == 200, r.text
    [p] = r.json()
    assert (p["id"], p["name"], p["floor_fen"], p["sites"]) == (pid, "甲媒体", 7, 1)
    for body in (client.get("/v1/advertisers", headers=ADMIN).text, r.text):
        assert "api_key" not in body and adv["Authorization"].split()[1] not in body
        assert pub["Authorization"].split()[1] not in body


def test_admin_lists_refuse_other_keys(client: TestClient) -> None:
    """An advertiser or publisher key gets 403 from both lists; no key gets 401."""
    _, adv = new_advertiser(client)
    _, pub = new_publisher(client)
    for path in ("/v1/advertisers", "/v1/publishers"):
        assert_error(client.get(path, headers=adv), 403, code="forbidden")
        assert_error(client.get(path, headers=pub), 403, code="forbidden")
        assert_error(client.get(path), 401, code="unauthorized")


def test_admin_lists_are_empty_without_tenants(client: TestClient) -> None:
    assert client.get("/v1/advertisers", headers=ADMIN).json() == []
    assert client.get("/v1/publishers", headers=ADMIN).json() == []


# ---- CSV dry run --------------------------------------------------------------------------------
PREVIEW_CSV = (
    "title,landing_url,keywords,bid_fen,keyword_bids\n"          # line 1
    '学区房新盘开售,https://example.com/h,"[学区房]|“首付”|楼盘",150,学区房:220\n'  # line 2
    "国家级学区房,https://example.com/n,学区房,120,\n"               # line 3: 国家级, flagged
)


def _ads(client: TestClient, cid: str, h: dict[str, str]) -> list[dict[str, Any]]:
    r = client.get(f"/v1/campaigns/{cid}/ads", headers=h)
    assert r.status_code == 200, r.text
    return list(r.json())


def _upload(client: TestClient, cid: str, h: dict[str, str], raw: str, dry_run: bool = True) -> Any:
    return client.post(f"/v1/campaigns/{cid}/ads/csv", params={"dry_run": dry_run} if dry_run else None,
                       content=raw.encode("utf-8"), headers={**h, "Content-Type": "text/csv"})


def test_csv_dry_run_previews_every_row_and_stores_nothing(client: TestClient) -> None:
    """A dry run answers 200 with each row's line, title, keywords with match types, bids and the review
    status it would get (the 国家级 row pending with its reason); the campaign's ads are unchanged."""
    _, h = new_advertiser(client)
    cid = new_campaign(client, h)
    new_ad(client, h, cid)
    before = _ads(client, cid, h)
    r = _upload(client, cid, h, PREVIEW_CSV)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["dry_run"], body["would_create"], body["flagged"]) == (True, 2, 1)
    first, second = body["rows"]
    assert (first["line"], first["title"], first["bid_fen"], first["keyword_bids"]) == (2, "学区房新盘开售", 150,
                                                                                       {"学区房": 220})
    assert first["keywords"] == [{"keyword": "学区房", "match_type": "exact"},
                                 {"keyword": "首付", "match_type": "phrase"},
                                 {"keyword": "楼盘", "match_type": "broad"}]
    assert (first["status"], first["reasons"]) == ("passed", [])
    assert (second["line"], second["status"]) == (3, "pending_review")
    assert [(x["rule"], x["term"], x["field"]) for x in second["reasons"]] == [("absolute_terms", "国家级", "title")]
    assert second["reasons"][0]["reason_zh"]
    assert _ads(client, cid, h) == before
    # the same file without dry_run stores both rows, as previewed
    r = _upload(client, cid, h, PREVIEW_CSV, dry_run=False)
    assert r.status_code == 201, r.text
    assert [f["line"] for f in r.json()["flagged"]] == [3]
    assert len(_ads(client, cid, h)) == len(before) + 2


def test_csv_dry_run_with_a_bad_row_is_the_uploads_422(client: TestClient) -> None:
    """A bad row in a dry run gets the same 422 as the upload, naming its line; nothing is stored."""
    _, h = new_advertiser(client)
    cid = new_campaign(client, h)
    raw = PREVIEW_CSV + "坏广告,https://example.com/b,楼盘,-5,\n"  # line 4: negative bid
    body = assert_error(_upload(client, cid, h, raw), 422, code="invalid_request")
    assert [row["line"] for row in body["rows"]] == [4] and "line 4" in body["detail"]
    assert _ads(client, cid, h) == []


def test_csv_dry_run_of_another_advertisers_campaign_is_404(client: TestClient) -> None:
    _, h = new_advertiser(client)
    cid = new_campaign(client, h)
    _, other = new_advertiser(client, "别家")
    assert_error(_upload(client, cid, other, PREVIEW_CSV), 404, code="not_found")


# ---- advertiser preview -------------------------------------------------------------------------
def _preview(client: TestClient, h: dict[str, str], page: dict[str, Any]) -> Any:
    return client.post("/v1/preview", json={"page": page}, headers=h)


def test_preview_shows_my_ad_on_a_matching_page_and_never_another_advertisers(client: TestClient,
                                                                              build_index: Any) -> None:
    """An advertiser sees its own ad for a page about it (passing the floor, with matched keywords,
    match types and signals) and not another advertiser's ad that matches the same page; the page's
    categories come with their Chinese names; no impression is counted."""
    _, telecom = new_advertiser(client, "长联通信")
    _, realty = new_advertiser(client, "华东房产")
    t_cmp, r_cmp = new_campaign(client, telecom), new_campaign(client, realty)
    mine = new_ad(client, telecom, t_cmp, keywords=["[手机套餐]", "长话", "市话", "漫游", "3g"])
    theirs = new_ad(client, realty, r_cmp, **{**REALTY_AD, "keywords": [*REALTY_AD["keywords"], "手机"]})
    build_index()
    reload_index(client)
    r = _preview(client, telecom, TELECOM_PAGE)
    assert r.status_code == 200, r.text
    body = r.json()
    ids = [a["ad_id"] for a in body["ads"]]
    assert ids == [mine["id"]]
    [ad] = body["ads"]
    assert ad["passed_floor"] is True and ad["score"] >= body["floor"] > 0
    assert {"keyword": "长话", "match_type": "broad"} in ad["matched"]
    assert set(ad["signals"]) >= {"keyword", "tfidf", "semantic", "coverage"}
    assert body["page_categories"] and all(c["id"] and c["name_zh"] for c in body["page_categories"])
    assert body["index_version"]
    # the realty advertiser sees its own ad on the realty page, never the telecom one
    other = _preview(client, realty, REALTY_PAGE).json()
    assert [a["ad_id"] for a in other["ads"] if a["passed_floor"]] == [theirs["id"]]
    assert mine["id"] not in [a["ad_id"] for a in other["ads"]]
    # nothing was counted: the telecom campaign has no impression
    report = client.get(f"/v1/reports/campaigns/{t_cmp}", headers=telecom).json()
    assert report["totals"]["impressions"] == 0


def test_preview_admits_nothing_on_an_unrelated_page(client: TestClient, build_index: Any) -> None:
    """A page about the weekend's weather admits none of the advertiser's ads."""
    _, h = new_advertiser(client)
    cid = new_campaign(client, h)
    new_ad(client, h, cid)
    new_ad(client, h, cid, **REALTY_AD)
    build_index()
    reload_index(client)
    r = _preview(client, h, UNRELATED_PAGE)
    assert r.status_code == 200, r.text
    assert r.json()["ads"] == []


def test_preview_lists_an_ad_below_the_floor_as_a_near_miss(settings: Settings, build_index: Any) -> None:
    """With the relevance floor above the ad's score, /v1/match shows nothing and the preview lists the
    ad with passed_floor false and the floor it missed."""
    with TestClient(create_app(settings.model_copy(update={"relevance_floor": 0.95}))) as client:
        _, h = new_advertiser(client)
        cid = new_campaign(client, h)
        ad = new_ad(client, h, cid)
        pid, pub = new_publisher(client)
        build_index()
        reload_index(client)
        assert match(client, pub, pid, TELECOM_PAGE).json()["ads"] == []
        body = _preview(client, h, TELECOM_PAGE).json()
        assert body["floor"] == 0.95
        [near] = body["ads"]
        assert (near["ad_id"], near["passed_floor"]) == (ad["id"], False)
        assert 0 < near["score"] < 0.95 and near["matched"]


def test_preview_shows_an_ad_created_after_the_index_build(client: TestClient, build_index: Any) -> None:
    """An ad created after the build (served from the live overlay) shows in the preview within seconds,
    and the older ad still shows on its own page."""
    _, h = new_advertiser(client)
    cid = new_campaign(client, h)
    old = new_ad(client, h, cid)
    build_index()
    reload_index(client)
    new = new_ad(client, h, cid, **REALTY_AD)
    body = wait_for(lambda: _preview(client, h, REALTY_PAGE).json(),
                    lambda b: any(a["ad_id"] == new["id"] for a in b["ads"]), timeout=10)
    assert body["ads"][0]["ad_id"] == new["id"] and body["ads"][0]["passed_floor"], body
    assert [a["ad_id"] for a in _preview(client, h, TELECOM_PAGE).json()["ads"]][0] == old["id"]


def test_preview_by_url_uses_the_page_a_publisher_sent(client: TestClient, build_index: Any) -> None:
    """A URL the service saw through /v1/match previews that page's text; an unknown URL is a 404 saying
    to paste the text."""
    _, h = new_advertiser(client)
    cid = new_campaign(client, h)
    ad = new_ad(client, h, cid)
    pid, pub = new_publisher(client)
    build_index()
    reload_index(client)
    url = "https://news.example.com/3g"
    assert match(client, pub, pid, {**TELECOM_PAGE, "url": url}).status_code == 200
    r = _preview(client, h, {"url": url})
    assert r.status_code == 200, r.text
    assert [a["ad_id"] for a in r.json()["ads"] if a["passed_floor"]] == [ad["id"]]
    err = assert_error(_preview(client, h, {"url": "https://news.example.com/never-seen"}), 404, code="not_found")
    assert "paste" in err["detail"] and "page.text" in err["detail"]


def test_preview_refuses_bad_input_and_other_roles(client: TestClient, build_index: Any) -> None:
    """An empty page is a 422 naming page; a page over the size limit 413; a publisher key 403; before an
    index is loaded, 503."""
    _, h = new_advertiser(client)
    _, pub = new_publisher(client)
    assert_error(_preview(client, h, TELECOM_PAGE), 503, code="not_ready")
    cid = new_campaign(client, h)
    new_ad(client, h, cid)
    build_index()
    reload_index(client)
    assert_error(_preview(client, h, {"title": "只有标题"}), 422, field="page")
    assert_error(client.post("/v1/preview", json={}, headers=h), 422, field="page")
    assert_error(_preview(client, h, {"text": "长" * 200_001}), 413, field="page.text")
    assert_error(_preview(client, pub, TELECOM_PAGE), 403, code="forbidden")


# ---- fill rate ----------------------------------------------------------------------------------
def test_publisher_report_counts_requested_slots_and_fill_rate(client: TestClient, build_index: Any) -> None:
    """Two requests of 3 slots each, with one matching ad in the catalog: 2 impressions of 6 slots
    asked for, fill rate 1/3; a request that fills nothing still counts its slots."""
    _, h = new_advertiser(client)
    cid = new_campaign(client, h)
    new_ad(client, h, cid)
    pid, pub = new_publisher(client)
    build_index()
    reload_index(client)
    for _ in range(2):
        r = match(client, pub, pid, TELECOM_PAGE, slots=3)
        assert r.status_code == 200 and len(r.json()["ads"]) == 1, r.text
    t = client.get(f"/v1/reports/publishers/{pid}", headers=pub).json()["totals"]
    assert (t["impressions"], t["requested_slots"], t["fill_rate"]) == (2, 6, round(2 / 6, 6))
    r = match(client, pub, pid, UNRELATED_PAGE, slots=4)
    assert r.status_code == 200 and r.json()["ads"] == []
    report = client.get(f"/v1/reports/publishers/{pid}", headers=pub).json()
    t = report["totals"]
    assert (t["impressions"], t["requested_slots"], t["fill_rate"]) == (2, 10, 0.2)
    [row] = report["rows"]
    assert (row["requested_slots"], row["fill_rate"]) == (10, 0.2)
    csv = client.get(f"/v1/reports/publishers/{pid}", params={"format": "csv"}, headers=pub).text.splitlines()
    header, total = csv[0].split(","), csv[-1].split(",")
    assert (total[header.index("requested_slots")], total[header.index("fill_rate")]) == ("10", "0.2")


def test_fill_rate_is_zero_without_requests(client: TestClient) -> None:
    pid, pub = new_publisher(client)
    t = client.get(f"/v1/reports/publishers/{pid}", headers=pub).json()["totals"]
    assert (t["requested_slots"], t["fill_rate"]) == (0, 0.0)
