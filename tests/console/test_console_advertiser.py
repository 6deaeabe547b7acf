"""An advertiser's console pages over the real API: campaigns in yuan, ads with match types, markup
shown as text, the CSV upload's two steps, the report and its CSV export."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.console.conftest import post_form, sign_in
from tests.helpers import new_ad, new_advertiser, new_campaign


def _signed_in(client: TestClient) -> dict[str, str]:
    _, adv = new_advertiser(client, "长联通信")
    sign_in(client, adv["Authorization"].removeprefix("Bearer "))
    return adv


def test_create_a_campaign_in_yuan(client: TestClient) -> None:
    adv = _signed_in(client)
    r: Any = post_form(client, "/console/campaigns", "/console/campaigns",
                       {"name": "春季楼盘推广", "daily_budget": "123.45", "total_budget": "", "pacing": "even"})
    assert r.status_code == 303
    (c,) = client.get("/v1/campaigns", headers=adv).json()
    assert r.headers["location"] == f"/console/campaigns/{c['id']}"
    assert (c["name"], c["daily_budget_fen"], c["total_budget_fen"], c["pacing"]) == ("春季楼盘推广", 12345, None, "even")
    page = client.get(r.headers["location"]).text
    assert "春季楼盘推广" in page and 'value="123.45"' in page


def test_a_bad_amount_names_its_field_and_stores_nothing(client: TestClient) -> None:
    adv = _signed_in(client)
    r: Any = post_form(client, "/console/campaigns", "/console/campaigns", {"name": "x", "daily_budget": "1.234"})
    assert r.status_code == 422 and "two decimals" in r.text and 'id="err-daily_budget"' in r.text
    assert client.get("/v1/campaigns", headers=adv).json() == []


def test_the_api_error_is_shown_field_by_field(client: TestClient) -> None:
    _signed_in(client)
    r: Any = post_form(client, "/console/campaigns", "/console/campaigns", {"name": "   "})
    assert r.status_code == 422 and 'role="alert"' in r.text


def test_edit_pause_resume_and_delete(client: TestClient) -> None:
    adv = _signed_in(client)
    cid = new_campaign(client, adv)
    page = f"/console/campaigns/{cid}"
    r: Any = post_form(client, page, page, {"name": "改名", "daily_budget": "50", "total_budget": "", "pacing": "asap"})
    assert r.status_code == 303
    c = client.get(f"/v1/campaigns/{cid}", headers=adv).json()
    assert (c["name"], c["daily_budget_fen"]) == ("改名", 5000)
    post_form(client, page, page + "/pause", {})
    assert client.get(f"/v1/campaigns/{cid}", headers=adv).json()["status"] == "paused"
    post_form(client, page, page + "/resume", {})
    assert client.get(f"/v1/campaigns/{cid}", headers=adv).json()["status"] == "active"
    post_form(client, page, page + "/delete", {})
    assert client.get(f"/v1/campaigns/{cid}", headers=adv).status_code == 404


def test_ads_show_keywords_with_match_types_and_markup_as_text(client: TestClient) -> None:
    adv = _signed_in(client)
    cid = new_campaign(client, adv)
    page = f"/console/campaigns/{cid}"
    r: Any = post_form(client, page, page + "/ads/new", {
        "title": "<script>alert(1)</script>手机套餐", "landing_url": "https://example.com/p",
        "keywords": "[长话]\n\"市话\"\n漫游", "negative_keywords": "招聘", "bid": "1.20"})
    assert r.status_code == 303, r.text
    (ad,) = client.get(f"/v1/campaigns/{cid}/ads", headers=adv).json()
    assert ad["bid_fen"] == 120 and ad["negative_keywords"] == ["招聘"]
    html = client.get(page).text
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;手机套餐" in html
    assert "长话</span> <span class=\"mt mt-exact\">精确" in html and "市话</span> <span class=\"mt mt-phrase\">短语" in html


def test_an_ad_the_law_flags_shows_its_reason(client: TestClient) -> None:
    adv = _signed_in(client)
    cid = new_campaign(client, adv)
    ad = new_ad(client, adv, cid, title="国家级最佳楼盘 首付两成")
    html = client.get(f"/console/campaigns/{cid}").text
    assert ad["review"]["status"] == "pending_review" and "待审核" in html and "国家级" in html


CSV_BAD = ("title,landing_url,keywords,bid_fen\n"
           "3G手机套餐,https://example.com/a,手机套餐|长话,120\n"
           "楼盘,https://example.com/b,楼盘,abc\n")
CSV_GOOD = CSV_BAD.replace(",abc", ",300").replace("楼盘,https", "国家级楼盘,https")


def test_csv_upload_names_the_bad_row_then_previews_then_stores(client: TestClient) -> None:
    adv = _signed_in(client)
    cid = new_campaign(client, adv)
    page = f"/console/upload/{cid}"
    r: Any = post_form(client, page, page, {"step": "check", "csv_text": CSV_BAD})
    assert r.status_code == 422 and 'data-line="3"' in r.text and "bid_fen" in r.text
    r = post_form(client, page, page, {"step": "check", "csv_text": CSV_GOOD})
    assert r.status_code == 200 and 'id="preview-rows"' in r.text and "国家级" in r.text
    assert client.get(f"/v1/campaigns/{cid}/ads", headers=adv).json() == []  # a check stores nothing
    r = post_form(client, page, page, {"step": "store", "csv_text": CSV_GOOD})
    assert r.status_code == 200 and 'id="upload-stored"' in r.text and 'id="held-rows"' in r.text
    ads = client.get(f"/v1/campaigns/{cid}/ads", headers=adv).json()
    assert sorted(a["review"]["status"] for a in ads) == ["passed", "pending_review"]


def test_report_page_and_csv_export_are_the_apis(client: TestClient) -> None:
    adv = _signed_in(client)
    cid = new_campaign(client, adv)
    page = client.get(f"/console/campaigns/{cid}/report")
    assert page.status_code == 200 and 'data-chart="daily"' in page.text and 'id="chart-data"' in page.text
    api = client.get(f"/v1/reports/campaigns/{cid}", params={"format": "csv"}, headers=adv)
    export = client.get(f"/console/campaigns/{cid}/report.csv")
    assert export.status_code == 200 and export.content == api.content
    assert "attachment" in export.headers["content-disposition"]


def test_another_advertisers_campaign_is_not_found(client: TestClient) -> None:
    _, other = new_advertiser(client, "别家")
    cid = new_campaign(client, other)
    _signed_in(client)
    assert client.get(f"/console/campaigns/{cid}").status_code == 404
    assert client.get(f"/console/campaigns/{cid}/report.csv").status_code == 404


def test_a_csv_over_a_megabyte_goes_through_the_console(client: TestClient) -> None:
    """The form's pasted text is no 1 MB form field, and the console's body limit is the CSV limit's."""
    adv = _signed_in(client)
    cid = new_campaign(client, adv)
    desc = "全国通话不分长市漫，月租低至十八元，" * 10  # 180 characters, 540 bytes
    rows = "".join(f"套餐{i},{desc},https://example.com/{i},手机套餐|长话,120\n" for i in range(2_000))
    text = "title,description,landing_url,keywords,bid_fen\n" + rows
    assert len(text.encode()) > 1_100_000
    page = f"/console/upload/{cid}"
    r: Any = post_form(client, page, page, {"step": "check"}, files={"csv_text": (None, text)})
    assert r.status_code == 200, r.text[:500]
    assert r.text.count("<tr data-line=") == 2_000
    r = post_form(client, page, page, {"step": "store"}, files={"csv_text": (None, text)})
    assert r.status_code == 200 and 'id="upload-stored"' in r.text
    assert len(client.get(f"/v1/campaigns/{cid}/ads", headers=adv).json()) == 2_000
