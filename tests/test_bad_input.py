"""Bad input gets a 4xx JSON error naming what is wrong — never a 500, never a half-written state."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.catalog_schemas import MAX_KEYWORD_CHARS, MAX_KEYWORDS
from tests.conftest import ADMIN_KEY, auth
from tests.helpers import (
    ADMIN,
    TELECOM_PAGE,
    ad_body,
    assert_error,
    new_ad,
    new_advertiser,
    new_campaign,
    new_publisher,
)

PAGE_LIMIT = 200_000  # Settings.max_page_bytes default


@pytest.fixture
def publisher(client: TestClient) -> tuple[str, dict[str, str]]:
    return new_publisher(client)


@pytest.fixture
def campaign(client: TestClient) -> tuple[str, dict[str, str]]:
    """An advertiser's campaign with one ad in it: (campaign id, advertiser headers)."""
    _, h = new_advertiser(client)
    cid = new_campaign(client, h)
    new_ad(client, h, cid)
    return cid, h


def ads_of(client: TestClient, campaign: tuple[str, dict[str, str]]) -> list[dict[str, Any]]:
    cid, h = campaign
    r = client.get(f"/v1/campaigns/{cid}/ads", headers=h)
    assert r.status_code == 200
    return list(r.json())


# ---- /v1/match ------------------------------------------------------------------------------------
@pytest.mark.parametrize("page", [{"text": ""}, {"text": "   \n\t  "}, {"html": "  "}, {"title": "只有标题"}, {}],
                         ids=["empty", "whitespace", "blank-html", "title-only", "nothing"])
def test_page_without_content_is_refused(client: TestClient, publisher: tuple[str, dict[str, str]],
                                         page: dict[str, Any]) -> None:
    """A page with no text or HTML content gets 422 naming the page."""
    pid, h = publisher
    r = client.post("/v1/match", json={"publisher_id": pid, "page": page}, headers=h)
    body = assert_error(r, 422, field="page", code="invalid_request")
    assert "text" in body["detail"]


@pytest.mark.parametrize("part", ["text", "html"])
def test_page_over_the_size_limit_is_refused(client: TestClient, publisher: tuple[str, dict[str, str]],
                                             part: str) -> None:
    """A page over 200 KB gets 413 naming the page and the limit."""
    pid, h = publisher
    big = "长话市话漫游" * (PAGE_LIMIT // 18 + 1)  # 3 bytes per character in UTF-8
    assert len(big.encode()) > PAGE_LIMIT
    r = client.post("/v1/match", json={"publisher_id": pid, "page": {part: big}}, headers=h)
    body = assert_error(r, 413, field="page", code="payload_too_large")
    assert str(PAGE_LIMIT) in body["detail"]


def test_page_exactly_at_the_size_limit_is_not_too_large(client: TestClient,
                                                         publisher: tuple[str, dict[str, str]]) -> None:
    """A page of exactly 200,000 bytes passes the size check (here it then meets the missing index)."""
    pid, h = publisher
    r = client.post("/v1/match", json={"publisher_id": pid, "page": {"text": "a" * PAGE_LIMIT}}, headers=h)
    assert_error(r, 503, code="not_ready")


@pytest.mark.parametrize("slots", [0, 11, -1, "three"])
def test_slots_outside_one_to_ten_are_refused(client: TestClient, publisher: tuple[str, dict[str, str]],
                                              slots: Any) -> None:
    """slots must be 1-10; anything else gets 422 naming slots."""
    pid, h = publisher
    r = client.post("/v1/match", json={"publisher_id": pid, "page": TELECOM_PAGE, "slots": slots}, headers=h)
    assert_error(r, 422, field="slots")


@pytest.mark.parametrize("extra,field", [({"publisher_id": "p" * 65}, "publisher_id"),
                                         ({"page": {"text": "正文", "url": "not a url"}}, "page.url"),
                                         ({"page": {"text": "正文", "title": "长" * 501}}, "page.title"),
                                         ({"page": "just a string"}, "page")])
def test_malformed_match_fields_are_refused(client: TestClient, publisher: tuple[str, dict[str, str]],
                                            extra: dict[str, Any], field: str) -> None:
    """Over-long ids, bad URLs, over-long titles and wrongly typed pages get 422 naming the field."""
    pid, h = publisher
    body = {"publisher_id": pid, "page": TELECOM_PAGE, **extra}
    assert_error(client.post("/v1/match", json=body, headers=h), 422, field=field)


@pytest.mark.parametrize("where", ["top", "page"])
def test_unknown_match_fields_are_refused(client: TestClient, publisher: tuple[str, dict[str, str]],
                                          where: str) -> None:
    """Unknown fields, top-level or nested, get 422 naming the field as unknown."""
    pid, h = publisher
    body: dict[str, Any] = {"publisher_id": pid, "page": dict(TELECOM_PAGE)}
    target = body if where == "top" else body["page"]
    target["colour"] = "red"
    r = assert_error(client.post("/v1/match", json=body, headers=h), 422, field="colour")
    assert "unknown field" in r["detail"]


NOT_UTF8 = {  # raw body -> marks for (says UTF-8, names the body field)
    "utf16-bom-garbage": (b'\xff\xfe\xfa{"publisher_id": 1}', (), ()),
    "invalid-utf8-sequence": (b'{"publisher_id": "\xc3\x28", "page": {"text": "x"}}', (), ()),
    "bom-then-binary": (b"\xff\xfe\x00\x01garbage", (), ()),
}


def post_raw(client: TestClient, headers: dict[str, str], raw: bytes) -> Any:
    return client.post("/v1/match", content=raw, headers={**headers, "Content-Type": "application/json"})


@pytest.mark.parametrize("raw", [v[0] for v in NOT_UTF8.values()], ids=list(NOT_UTF8))
def test_body_not_utf8_gets_a_json_4xx(client: TestClient, publisher: tuple[str, dict[str, str]],
                                       raw: bytes) -> None:
    """A body that is not UTF-8 gets a 4xx JSON error, not a 500."""
    r = post_raw(client, publisher[1], raw)
    assert 400 <= r.status_code < 500
    assert_error(r, r.status_code)


@pytest.mark.parametrize("raw", [pytest.param(v[0], marks=v[1], id=k) for k, v in NOT_UTF8.items()])
def test_body_not_utf8_says_to_send_utf8(client: TestClient, publisher: tuple[str, dict[str, str]],
                                         raw: bytes) -> None:
    """A body that is not UTF-8 gets 422 whose detail says to send UTF-8 JSON."""
    body = assert_error(post_raw(client, publisher[1], raw), 422, code="invalid_request")
    assert "UTF-8" in body["detail"]


@pytest.mark.parametrize("raw", [pytest.param(v[0], marks=v[2], id=k) for k, v in NOT_UTF8.items()])
def test_body_not_utf8_names_the_body_field(client: TestClient, publisher: tuple[str, dict[str, str]],
                                            raw: bytes) -> None:
    """The error for an undecodable body names the field 'body'."""
    body = assert_error(post_raw(client, publisher[1], raw), 422)
    assert [f["field"] for f in body["fields"]] == ["body"]


@pytest.mark.parametrize("raw", [b"", b"[1, 2]", b'{"publisher_id": ', b"null"], ids=["empty", "array", "truncated", "null"])
def test_body_not_a_json_object_is_refused(client: TestClient, publisher: tuple[str, dict[str, str]],
                                           raw: bytes) -> None:
    """An empty, truncated or non-object JSON body gets a 4xx JSON error."""
    _, h = publisher
    r = client.post("/v1/match", content=raw, headers={**h, "Content-Type": "application/json"})
    assert_error(r, 422)


def test_deeply_nested_json_is_a_422_that_says_so(client: TestClient, publisher: tuple[str, dict[str, str]]) -> None:
    """A 10,000-deep JSON body gets a 422 naming the nesting, not a claim that it is not UTF-8."""
    body = assert_error(post_raw(client, publisher[1], b"[" * 10_000 + b"]" * 10_000), 422, field="body")
    assert "nested too deeply" in body["detail"] and "UTF-8" not in body["detail"]


@pytest.mark.parametrize("path", ["/v1/ads/ad_x", "/v1/campaigns/cmp_x"])
@pytest.mark.parametrize("method", ["OPTIONS", "PUT", "POST"])
def test_unsupported_method_names_every_method_the_path_serves(client: TestClient, method: str, path: str) -> None:
    """A method a path does not serve gets 405 whose Allow names GET, PATCH and DELETE, all the path serves."""
    r = client.request(method, path)
    assert_error(r, 405, code="method_not_allowed")
    assert {m.strip() for m in r.headers["allow"].split(",")} == {"GET", "PATCH", "DELETE"}


# ---- authentication -------------------------------------------------------------------------------
@pytest.mark.parametrize("method,path", [("POST", "/v1/match"), ("GET", "/v1/campaigns"),
                                         ("POST", "/v1/advertisers"), ("GET", "/v1/ads/x")])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer "}, {"Authorization": "Basic dXNlcjpwdw=="}],
                         ids=["none", "empty-bearer", "basic"])
def test_missing_api_key_is_401(client: TestClient, method: str, path: str, headers: dict[str, str]) -> None:
    """A request without an API key gets 401 saying how to send one."""
    r = client.request(method, path, json={"name": "x"}, headers=headers)
    body = assert_error(r, 401, code="unauthorized")
    assert "Bearer" in body["detail"]


@pytest.mark.parametrize("headers", [auth("am_adv_not-a-real-key"), {"X-API-Key": "wrong"}], ids=["bearer", "x-api-key"])
def test_wrong_api_key_is_401(client: TestClient, headers: dict[str, str]) -> None:
    """A key that was never issued gets 401, whichever header carries it."""
    assert_error(client.get("/v1/campaigns", headers=headers), 401, code="unauthorized")


def test_x_api_key_header_is_accepted(client: TestClient) -> None:
    """A valid key sent as X-API-Key authenticates like a bearer token (control for the 401 tests)."""
    _, h = new_advertiser(client)
    key = h["Authorization"].removeprefix("Bearer ")
    assert client.get("/v1/campaigns", headers={"X-API-Key": key}).status_code == 200


# ---- ads (JSON) -----------------------------------------------------------------------------------
BAD_ADS = [
    ({"keywords": ["长" * (MAX_KEYWORD_CHARS + 1)]}, "keywords"),
    ({"keywords": [f"词{i}" for i in range(MAX_KEYWORDS + 1)]}, "keywords"),
    ({"keywords": []}, "keywords"),
    ({"keywords": ["漫游", "   "]}, "keywords"),
    ({"bid_fen": -1}, "bid_fen"),
    ({"bid_fen": 0}, "bid_fen"),
    ({"bid_fen": 1.5}, "bid_fen"),
    ({"bid_fen": 10**9}, "bid_fen"),
    ({"title": ""}, "title"),
    ({"title": "长" * 61}, "title"),
    ({"landing_url": "javascript alert(1)"}, "landing_url"),
    ({"keyword_bids": {"不在关键词里": 100}}, "keyword_bids"),
    ({"keyword_bids": {"漫游": -5}}, "keyword_bids"),
    ({"negative_keywords": ["x" * (MAX_KEYWORD_CHARS + 1)]}, "negative_keywords"),
    ({"status": "deleted"}, "status"),
    ({"colour": "red"}, "colour"),
]


@pytest.mark.parametrize("change,field", BAD_ADS, ids=[f for _, f in BAD_ADS])
def test_bad_ad_is_refused_and_nothing_stored(client: TestClient, campaign: tuple[str, dict[str, str]],
                                              change: dict[str, Any], field: str) -> None:
    """An invalid ad gets 422 naming the field, and the campaign's ads are unchanged."""
    cid, h = campaign
    before = ads_of(client, campaign)
    r = client.post(f"/v1/campaigns/{cid}/ads", json=ad_body(**change), headers=h)
    assert_error(r, 422, field=field, code="invalid_request")
    assert ads_of(client, campaign) == before


def test_keyword_over_the_limit_message_says_what_to_change(client: TestClient,
                                                            campaign: tuple[str, dict[str, str]]) -> None:
    """The error for an over-long keyword states its length and the limit."""
    cid, h = campaign
    r = client.post(f"/v1/campaigns/{cid}/ads", json=ad_body(keywords=["长" * 41]), headers=h)
    body = assert_error(r, 422, field="keywords")
    assert "41" in body["detail"] and str(MAX_KEYWORD_CHARS) in body["detail"]


@pytest.mark.parametrize("change,field", [({"bid_fen": -1}, "bid_fen"), ({"keywords": []}, "keywords"),
                                          ({"keyword_bids": {"不在关键词里": 100}}, "keyword_bids"),
                                          ({"status": "gone"}, "status"), ({"id": "ad_other"}, "id")])
def test_bad_ad_patch_is_refused_and_ad_unchanged(client: TestClient, change: dict[str, Any], field: str) -> None:
    """An invalid ad PATCH gets 422 naming the field and the stored ad stays as it was."""
    _, h = new_advertiser(client)
    ad = new_ad(client, h, new_campaign(client, h))
    r = client.patch(f"/v1/ads/{ad['id']}", json=change, headers=h)
    assert_error(r, 422, field=field)
    assert client.get(f"/v1/ads/{ad['id']}", headers=h).json() == ad


@pytest.mark.parametrize("body,field", [({"name": ""}, "name"), ({"name": "x" * 101}, "name"),
                                        ({"name": "x", "daily_budget_fen": -1}, "daily_budget_fen"),
                                        ({"name": "x", "status": "archived"}, "status"),
                                        ({"name": "x", "owner": "someone"}, "owner"), ({}, "name")])
def test_bad_campaign_is_refused_and_nothing_stored(client: TestClient, body: dict[str, Any], field: str) -> None:
    """An invalid campaign gets 422 naming the field and no campaign is created."""
    _, h = new_advertiser(client)
    assert_error(client.post("/v1/campaigns", json=body, headers=h), 422, field=field)
    assert client.get("/v1/campaigns", headers=h).json() == []


@pytest.mark.parametrize("path,body,field", [("/v1/advertisers", {"name": ""}, "name"),
                                             ("/v1/advertisers", {"name": "x", "api_key": "mine"}, "api_key"),
                                             ("/v1/publishers", {"name": "x", "floor_fen": -1}, "floor_fen"),
                                             ("/v1/publishers", {"name": "x", "fallback_ad": {"title": "t"}},
                                              "fallback_ad.landing_url")])
def test_bad_admin_input_is_refused(client: TestClient, path: str, body: dict[str, Any], field: str) -> None:
    """Invalid advertiser or publisher bodies get 422 naming the field."""
    assert_error(client.post(path, json=body, headers=ADMIN), 422, field=field)


def test_json_endpoint_with_non_json_content_type_is_refused(client: TestClient) -> None:
    """A JSON endpoint sent form data gets a 4xx JSON error and stores nothing."""
    _, h = new_advertiser(client)
    r = client.post("/v1/campaigns", content=b"name=x", headers={**h, "Content-Type": "application/x-www-form-urlencoded"})
    assert_error(r, 422)
    assert client.get("/v1/campaigns", headers=h).json() == []


@pytest.mark.parametrize("method,path", [("GET", "/v1/nowhere"), ("DELETE", "/healthz")])
def test_unknown_route_or_method_gets_json(client: TestClient, method: str, path: str) -> None:
    """Unknown paths and methods get a JSON 404/405 body, not HTML."""
    r = client.request(method, path)
    assert_error(r, 404 if method == "GET" else 405)


# ---- CSV upload -----------------------------------------------------------------------------------
GOOD_CSV = (
    "title,description,landing_url,keywords,bid_fen,keyword_bids,negative_keywords\n"
    "学区房新盘开售,地铁口精装三房,https://example.com/house,楼盘|学区房|首付|房贷,150,学区房:220,烂尾\n"
    "二手房急售,满五唯一 南北通透,https://example.com/resale,二手房；满五唯一;房贷,90,二手房：120,\n"
)


def upload(client: TestClient, campaign: tuple[str, dict[str, str]], raw: bytes,
           content_type: str = "text/csv") -> Any:
    cid, h = campaign
    return client.post(f"/v1/campaigns/{cid}/ads/csv", content=raw, headers={**h, "Content-Type": content_type})


def test_csv_upload_stores_every_row(client: TestClient, campaign: tuple[str, dict[str, str]]) -> None:
    """A valid UTF-8 CSV creates one ad per row with lists and per-keyword bids parsed."""
    before = ads_of(client, campaign)
    r = upload(client, campaign, GOOD_CSV.encode("utf-8"))
    assert r.status_code == 201, r.text
    assert r.json()["created"] == 2
    new = {a["title"]: a for a in ads_of(client, campaign)}
    assert len(new) == len(before) + 2
    assert new["学区房新盘开售"]["keywords"] == ["楼盘", "学区房", "首付", "房贷"]
    assert new["学区房新盘开售"]["keyword_bids"] == {"学区房": 220}
    assert new["学区房新盘开售"]["negative_keywords"] == ["烂尾"]
    assert new["二手房急售"]["keywords"] == ["二手房", "满五唯一", "房贷"]
    assert new["二手房急售"]["keyword_bids"] == {"二手房": 120}


def test_csv_with_utf8_bom_is_accepted(client: TestClient, campaign: tuple[str, dict[str, str]]) -> None:
    """A UTF-8 CSV starting with a byte-order mark (Excel's 'CSV UTF-8') is accepted, header intact."""
    r = upload(client, campaign, b"\xef\xbb\xbf" + GOOD_CSV.encode("utf-8"))
    assert r.status_code == 201, r.text
    assert sorted(a["title"] for a in r.json()["ads"]) == ["二手房急售", "学区房新盘开售"]


def test_csv_in_gbk_is_accepted(client: TestClient, campaign: tuple[str, dict[str, str]]) -> None:
    """A GBK-encoded CSV (Excel on Chinese Windows) is decoded and stored with the right characters."""
    raw = GOOD_CSV.replace("；", ";").replace("二手房：", "二手房:").encode("gbk")
    r = upload(client, campaign, raw)
    assert r.status_code == 201, r.text
    titles = {a["title"]: a for a in r.json()["ads"]}
    assert titles["学区房新盘开售"]["description"] == "地铁口精装三房"


def test_csv_with_bad_rows_stores_nothing_and_lists_every_bad_line(
        client: TestClient, campaign: tuple[str, dict[str, str]]) -> None:
    """A CSV with two bad rows among good ones gets 422 naming both lines, and no ad is stored."""
    raw = (
        "title,landing_url,keywords,bid_fen\n"          # line 1
        "好广告一,https://example.com/1,楼盘|首付,100\n"   # line 2
        "坏广告,https://example.com/2,楼盘,-5\n"          # line 3: negative bid
        "好广告二,https://example.com/3,房贷,100\n"        # line 4
        "\n"                                              # line 5: blank, skipped
        f"好广告三,https://example.com/4,{'长' * 41},100\n"  # line 6: keyword too long
        "好广告四,https://example.com/5,公积金,100\n"       # line 7
    ).encode()
    before = ads_of(client, campaign)
    r = upload(client, campaign, raw)
    body = assert_error(r, 422, code="invalid_request")
    assert [row["line"] for row in body["rows"]] == [3, 6]
    assert "line 3" in body["detail"] and "line 6" in body["detail"] and "nothing was stored" in body["detail"]
    assert any("bid_fen" in e for e in body["rows"][0]["errors"])
    assert any("keywords" in e for e in body["rows"][1]["errors"])
    assert ads_of(client, campaign) == before


@pytest.mark.parametrize("header,named", [("title,landing_url,keywords\n", "bid_fen"),
                                          ("title,landing_url,keywords,bid_fen,price\n", "price"),
                                          ("", "title")], ids=["missing", "unknown", "empty-file"])
def test_csv_with_bad_header_is_refused(client: TestClient, campaign: tuple[str, dict[str, str]],
                                        header: str, named: str) -> None:
    """A CSV whose header lacks required columns or has unknown ones gets 422 naming them; nothing is stored."""
    before = ads_of(client, campaign)
    raw = (header + ("好广告,https://example.com/1,楼盘,100,9\n" if header else "")).encode("utf-8")
    body = assert_error(upload(client, campaign, raw), 422)
    assert named in body["detail"]
    assert ads_of(client, campaign) == before


@pytest.mark.parametrize("raw,expect", [
    (b"title,landing_url,keywords,bid_fen\n", "no rows"),
    (b"title,landing_url,keywords,bid_fen\nx,https://example.com,a,1,extra\n", "line 2"),
    (b"title,landing_url,keywords,bid_fen,keyword_bids\nx,https://example.com,a,1,a=5\n", "keyword:fen"),
    (b"\xff\xff\xfe\xfe\x80\x81title\n", "UTF-8"),
], ids=["header-only", "extra-cell", "bad-keyword-bids", "unknown-encoding"])
def test_malformed_csv_is_refused(client: TestClient, campaign: tuple[str, dict[str, str]], raw: bytes,
                                  expect: str) -> None:
    """Header-only files, extra cells, malformed keyword_bids and unknown encodings get 422 saying what is wrong."""
    before = ads_of(client, campaign)
    body = assert_error(upload(client, campaign, raw), 422)
    assert expect in body["detail"]
    assert ads_of(client, campaign) == before


CSV_FIELD_LIMIT = 131_072  # the csv module's default field_size_limit


@pytest.mark.parametrize("cell,field", [
    ("x" * (CSV_FIELD_LIMIT + 1), "description"),
    ('"never closed,https://example.com/2,房贷,100\n' + "好广告二,https://example.com/3,房贷,100\n" * 4000, "title"),
], ids=["long-description", "unclosed-quote"])
def test_csv_cell_over_the_reader_limit_is_a_422_naming_line_and_field(
        client: TestClient, campaign: tuple[str, dict[str, str]], cell: str, field: str) -> None:
    """A CSV cell over 131,072 characters gets 422 naming its line and column, and nothing is stored."""
    before = ads_of(client, campaign)
    if field == "description":
        raw = f"title,landing_url,keywords,bid_fen,description\n好广告,https://example.com/1,楼盘,100,\n好广告,https://example.com/2,楼盘,100,{cell}\n"
    else:
        raw = f"title,landing_url,keywords,bid_fen\n好广告,https://example.com/1,楼盘,100\n{cell}"
    body = assert_error(upload(client, campaign, raw.encode()), 422, code="invalid_request")
    assert "line 3" in body["detail"] and field in body["detail"], body["detail"]
    assert body["fields"] == [{"field": field, "message": "cell too long"}]
    assert ads_of(client, campaign) == before


def test_csv_without_a_header_row_says_to_add_one(client: TestClient, campaign: tuple[str, dict[str, str]]) -> None:
    """A CSV whose first line is an ad, not the header, gets 422 saying to add the header line."""
    raw = "学区房新盘开售,https://example.com/house,楼盘|学区房,150\n二手房急售,https://example.com/r,二手房,90\n"
    body = assert_error(upload(client, campaign, raw.encode()), 422, code="invalid_request")
    assert "not a header row" in body["detail"] and "title" in body["detail"]


@pytest.mark.parametrize("ctype", ["application/json", "multipart/form-data; boundary=x", ""],
                         ids=["json", "multipart", "missing"])
def test_csv_with_wrong_content_type_is_415(client: TestClient, campaign: tuple[str, dict[str, str]],
                                            ctype: str) -> None:
    """A CSV upload not declared as CSV gets 415 saying which content type to send; nothing is stored."""
    before = ads_of(client, campaign)
    body = assert_error(upload(client, campaign, GOOD_CSV.encode("utf-8"), ctype), 415,
                        code="unsupported_media_type")
    assert "text/csv" in body["detail"]
    assert ads_of(client, campaign) == before


def test_csv_into_unknown_campaign_is_404(client: TestClient) -> None:
    """Uploading into a campaign that does not exist gets 404."""
    _, h = new_advertiser(client)
    r = client.post("/v1/campaigns/cmp_missing/ads/csv", content=GOOD_CSV.encode(),
                    headers={**h, "Content-Type": "text/csv"})
    assert_error(r, 404)


def _errors_counted(client: TestClient, status: str, code: str) -> float:
    text = client.get("/metrics", headers=auth(ADMIN_KEY)).text
    line = f'admatch_http_errors_total{{error="{code}",status="{status}"}} '
    return next((float(x.removeprefix(line)) for x in text.splitlines() if x.startswith(line)), 0.0)


def test_error_responses_are_counted_in_metrics_by_status_and_code(
        client: TestClient, publisher: tuple[str, dict[str, str]]) -> None:
    pid, h = publisher
    before = _errors_counted(client, "422", "invalid_request"), _errors_counted(client, "401", "unauthorized")
    client.post("/v1/match", json={"publisher_id": pid, "page": {"text": "运营商"}, "slots": 0}, headers=h)
    client.post("/v1/match", json={"publisher_id": pid, "page": {"text": "运营商"}}, headers=auth("wrong"))
    after = _errors_counted(client, "422", "invalid_request"), _errors_counted(client, "401", "unauthorized")
    assert after == (before[0] + 1, before[1] + 1)
