"""Creative review through the HTTP API (service/review/creative_review.py, the admin routes): a flagged ad
is stored pending with its reasons and never served, admins list, approve and reject it, edits are
reviewed again, the CSV upload stores every row and lists the flagged ones, and bad requests get
4xx errors."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import redis
from fastapi.testclient import TestClient

from service.review.creative_review import reviewed_changes
from service.store import keys
from service.store.catalog import CatalogStore
from service.store.records import AdRecord, ReviewStatus
from tests.helpers import (
    ADMIN,
    TELECOM_PAGE,
    assert_error,
    matched_ids,
    new_ad,
    new_advertiser,
    new_campaign,
    new_publisher,
    reload_index,
    wait_for,
    with_store,
)

# A telecom ad that says 国家级 and 最佳: matched by the telecom page, flagged by review.
FLAGGED_AD = {"title": "国家级品质 3G手机套餐", "description": "长话市话漫游一个价，最佳选择"}


def setup(client: TestClient) -> tuple[str, dict[str, str], str, dict[str, str]]:
    pub_id, pub = new_publisher(client, floor_fen=1)
    _aid, adv = new_advertiser(client)
    return pub_id, pub, new_campaign(client, adv), adv


def pending_ids(client: TestClient) -> list[str]:
    r = client.get("/v1/review/ads", headers=ADMIN)
    assert r.status_code == 200, r.text
    return [a["id"] for a in r.json()]


def reasons(ad: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    return {(x["rule"], x["article"], x["term"], x["field"]) for x in ad["review"]["reasons"]}


def test_a_flagged_ad_is_pending_never_served_and_serves_within_a_second_of_approval(client, build_index):
    """An ad with 国家级 and 最佳 is created (201) pending_review with both reasons; /v1/match never
    returns it, neither from a rebuilt index nor from the live overlay; an admin approves it and it is
    matched within about a second."""
    pub_id, pub, cmp_id, adv = setup(client)
    clean = new_ad(client, adv, cmp_id)
    assert clean["review"] == {"status": "passed", "reasons": [], "note": None, "reviewed_at": None}
    build_index()
    reload_index(client)
    flagged = new_ad(client, adv, cmp_id, **FLAGGED_AD)
    assert flagged["review"]["status"] == "pending_review"
    assert reasons(flagged) == {("absolute_terms", "9(3)", "国家级", "title"),
                                ("absolute_superlative", "9(3)", "最佳", "description")}
    assert all(x["reason_zh"] and x["reason_en"] for x in flagged["review"]["reasons"])
    assert client.get(f"/v1/ads/{flagged['id']}", headers=adv).json()["review"] == flagged["review"]

    time.sleep(1.0)  # the live overlay has seen the new ad
    assert matched_ids(client, pub, pub_id, TELECOM_PAGE) == [clean["id"]]
    build_index()
    reload_index(client)
    assert matched_ids(client, pub, pub_id, TELECOM_PAGE) == [clean["id"]]
    assert pending_ids(client) == [flagged["id"]]

    r = client.post(f"/v1/review/ads/{flagged['id']}/approve", headers=ADMIN, json={"note": "已核实"})
    assert r.status_code == 200, r.text
    assert r.json()["review"]["status"] == "approved" and r.json()["review"]["reviewed_at"]
    approved_at = time.monotonic()
    got = wait_for(lambda: matched_ids(client, pub, pub_id, TELECOM_PAGE),
                   lambda ids: flagged["id"] in ids, timeout=3.0)
    assert flagged["id"] in got and time.monotonic() - approved_at < 1.5
    assert pending_ids(client) == []
    build_index()  # a rebuild includes it too
    reload_index(client)
    assert flagged["id"] in matched_ids(client, pub, pub_id, TELECOM_PAGE)


def test_a_rejected_ad_stays_unserved_and_its_advertiser_sees_why(client, build_index):
    """Rejecting with a reason keeps the ad out of /v1/match; the advertiser reads the reason; an
    edit that removes the claims passes review and serves; an edit adding one sends it back."""
    pub_id, pub, cmp_id, adv = setup(client)
    flagged = new_ad(client, adv, cmp_id, **FLAGGED_AD)
    build_index()
    reload_index(client)
    r = client.post(f"/v1/review/ads/{flagged['id']}/reject", headers=ADMIN,
                    json={"reason": "标题含“国家级”，请删除绝对化用语后重新提交"})
    assert r.status_code == 200, r.text
    mine = client.get(f"/v1/ads/{flagged['id']}", headers=adv).json()
    assert mine["review"]["status"] == "rejected"
    assert mine["review"]["note"] == "标题含“国家级”，请删除绝对化用语后重新提交"
    assert pending_ids(client) == []

    # a bid change keeps the verdict
    r = client.patch(f"/v1/ads/{flagged['id']}", headers=adv, json={"bid_fen": 150})
    assert r.json()["review"]["status"] == "rejected"
    time.sleep(1.0)
    assert matched_ids(client, pub, pub_id, TELECOM_PAGE) == []

    r = client.patch(f"/v1/ads/{flagged['id']}", headers=adv,
                     json={"title": "3G手机套餐 长话市话漫游一个价", "description": "月租低至18元"})
    assert r.status_code == 200 and r.json()["review"] == {"status": "passed", "reasons": [], "note": None,
                                                          "reviewed_at": None}
    wait_for(lambda: matched_ids(client, pub, pub_id, TELECOM_PAGE), lambda ids: ids == [flagged["id"]], 3.0)
    assert matched_ids(client, pub, pub_id, TELECOM_PAGE) == [flagged["id"]]

    r = client.patch(f"/v1/ads/{flagged['id']}", headers=adv, json={"keywords": ["手机套餐", "长话", "全网最低价"]})
    assert r.json()["review"]["status"] == "pending_review"
    assert reasons(r.json()) == {("absolute_superlative", "9(3)", "最低价", "keywords")}
    wait_for(lambda: matched_ids(client, pub, pub_id, TELECOM_PAGE), lambda ids: ids == [], 3.0)
    assert matched_ids(client, pub, pub_id, TELECOM_PAGE) == []
    assert pending_ids(client) == [flagged["id"]]


def test_editing_an_approved_ad_reviews_it_again(client):
    """An approved ad whose title changes is reviewed again: still flagged → pending again."""
    _pub_id, _pub, cmp_id, adv = setup(client)
    flagged = new_ad(client, adv, cmp_id, **FLAGGED_AD)
    assert client.post(f"/v1/review/ads/{flagged['id']}/approve", headers=ADMIN).status_code == 200
    assert client.patch(f"/v1/ads/{flagged['id']}", headers=adv, json={"status": "paused"}).json()["review"][
        "status"] == "approved"
    r = client.patch(f"/v1/ads/{flagged['id']}", headers=adv, json={"title": "国家级品质 4G手机套餐"})
    assert r.json()["review"]["status"] == "pending_review"
    assert pending_ids(client) == [flagged["id"]]


def test_csv_upload_stores_every_row_and_lists_the_flagged_ones(client):
    """A CSV with a clean row, a 包过 row and a Traditional 國家級 row: all three are stored (201), the
    result lists the two flagged rows with their line numbers and reasons."""
    _pub_id, _pub, cmp_id, adv = setup(client)
    csv = ("title,landing_url,keywords,bid_fen,description\n"
           "3G手机套餐,https://example.com/a,手机套餐|长话,100,月租低至18元\n"
           "会计证培训,https://example.com/b,会计证|考试,100,考试包过 不过全额退款\n"
           "國家級好茶,https://example.com/c,茶葉,100,\n")
    r = client.post(f"/v1/campaigns/{cmp_id}/ads/csv", headers={**adv, "Content-Type": "text/csv"},
                    content=csv.encode())
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["created"] == 3 and [a["review"]["status"] for a in body["ads"]] == [
        "passed", "pending_review", "pending_review"]
    flagged = {f["line"]: f for f in body["flagged"]}
    assert set(flagged) == {3, 4}
    assert {(x["rule"], x["term"]) for x in flagged[3]["reasons"]} >= {
        ("education_guarantee", "包过"), ("education_guarantee", "不过全额退款"), ("licence_education", "培训")}
    assert [(x["rule"], x["term"], x["field"]) for x in flagged[4]["reasons"]] == [("absolute_terms", "国家级", "title")]
    assert flagged[3]["ad_id"] == body["ads"][1]["id"]
    assert sorted(pending_ids(client)) == sorted(f["ad_id"] for f in body["flagged"])


def test_a_licensed_category_needs_licence_review(client):
    """An ad targeting IAB 286 (Medical Health) is pending with a licence reason naming Art. 46."""
    _pub_id, _pub, cmp_id, adv = setup(client)
    ad = new_ad(client, adv, cmp_id, target_categories=["286"])
    assert ad["review"]["status"] == "pending_review"
    assert reasons(ad) == {("licence_medical", "46", "286", "target_categories")}


def test_review_requests_are_refused_with_clear_4xx(client):
    """Unknown ad → 404; an ad that passed review → 404; an advertiser's key → 403; no key → 401; a
    rejection without a reason → 422; approving twice → 409; a stale updated_at → 409."""
    _pub_id, _pub, cmp_id, adv = setup(client)
    clean = new_ad(client, adv, cmp_id)
    flagged = new_ad(client, adv, cmp_id, **FLAGGED_AD)
    assert_error(client.post("/v1/review/ads/ad_nope/approve", headers=ADMIN), 404, code="not_found")
    assert_error(client.post(f"/v1/review/ads/{clean['id']}/approve", headers=ADMIN), 404, code="not_found")
    assert_error(client.post(f"/v1/review/ads/{flagged['id']}/approve", headers=adv), 403, code="forbidden")
    assert_error(client.get("/v1/review/ads", headers=adv), 403, code="forbidden")
    assert_error(client.post(f"/v1/review/ads/{flagged['id']}/approve"), 401)
    assert_error(client.post(f"/v1/review/ads/{flagged['id']}/reject", headers=ADMIN, json={}), 422, field="reason")
    assert_error(client.post(f"/v1/review/ads/{flagged['id']}/reject", headers=ADMIN, json={"reason": ""}), 422,
                 field="reason")
    assert_error(client.post(f"/v1/review/ads/{flagged['id']}/approve", headers=ADMIN,
                             json={"updated_at": "2020-01-01T00:00:00+00:00"}), 409, code="conflict")
    ok = client.post(f"/v1/review/ads/{flagged['id']}/approve", headers=ADMIN,
                     json={"updated_at": flagged["updated_at"]})
    assert ok.status_code == 200, ok.text
    assert_error(client.post(f"/v1/review/ads/{flagged['id']}/approve", headers=ADMIN), 409, code="conflict")
    assert_error(client.get("/v1/review/ads?limit=0", headers=ADMIN), 422)
    assert client.delete(f"/v1/ads/{flagged['id']}", headers=adv).status_code == 204
    assert_error(client.post(f"/v1/review/ads/{flagged['id']}/reject", headers=ADMIN, json={"reason": "x"}), 404)


def test_an_unreviewed_ad_is_reviewed_on_any_edit(client, settings):
    """An ad stored outside the API (unreviewed, so it serves) with 国家级 in its title is reviewed
    by its first edit through the API, even a bid change, and goes pending."""
    _pub_id, _pub, cmp_id, adv = setup(client)
    aid = client.get(f"/v1/campaigns/{cmp_id}", headers=adv).json()["advertiser_id"]

    async def load(store: CatalogStore) -> AdRecord:
        [rec] = await store.create_ads(aid, cmp_id, [{
            "title": "国家级品质 3G手机套餐", "description": "", "landing_url": "https://example.com/x",
            "keywords": ("手机套餐",), "bid_fen": 100, "status": "active"}])
        return rec
    rec = with_store(settings, load)
    assert client.get(f"/v1/ads/{rec.id}", headers=adv).json()["review"]["status"] == "unreviewed"
    r = client.patch(f"/v1/ads/{rec.id}", headers=adv, json={"bid_fen": 120})
    assert r.status_code == 200, r.text
    assert r.json()["review"]["status"] == "pending_review"
    assert reasons(r.json()) == {("absolute_terms", "9(3)", "国家级", "title")}
    assert pending_ids(client) == [rec.id]


def test_an_edit_racing_an_admin_decision_does_not_overwrite_it(client, settings):
    """The admin rejects an approved ad while the advertiser's bid change is between its read and
    its write: the edit is applied again to the rejected ad (rejected, new bid) instead of writing
    the approved copy it read, and the ad stays blocked."""
    _pub_id, _pub, cmp_id, adv = setup(client)
    flagged = new_ad(client, adv, cmp_id, **FLAGGED_AD)
    aid, ad_id = flagged["advertiser_id"], flagged["id"]
    assert client.post(f"/v1/review/ads/{ad_id}/approve", headers=ADMIN).status_code == 200
    admin = redis.Redis.from_url(settings.redis_url or "", decode_responses=True)
    seen: list[str] = []

    def revise(current: AdRecord, changes: dict[str, Any]) -> dict[str, Any]:
        seen.append(current.review_status)
        if len(seen) == 1:  # another client writes the ad between this edit's read and its write
            rejected = dataclasses.replace(current, review_status=ReviewStatus.REJECTED, review_note="资质过期")
            admin.set(keys.ad(aid, ad_id), rejected.to_json())
        return reviewed_changes(current, changes)

    async def edit(store: CatalogStore) -> tuple[AdRecord, set[str]]:
        await store.update_ad(aid, ad_id, {"bid_fen": 150}, revise=revise)
        return await store.get_ad(aid, ad_id), await store.blocked()
    ad, blocked = with_store(settings, edit)
    admin.close()
    assert seen == ["approved", "rejected"]
    assert (ad.review_status, ad.review_note, ad.bid_fen) == ("rejected", "资质过期", 150)
    assert keys.blocked_ad(ad_id) in blocked
    assert client.get(f"/v1/ads/{ad_id}", headers=adv).json()["review"]["status"] == "rejected"
