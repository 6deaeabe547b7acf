"""Conversions through the HTTP API: a CPA campaign's ad from /v1/match, its free click with the
click id on the landing URL, the postback and the pixel, and the campaign, keyword and category
reports. Uses the shared one-ad index and world of tests/test_clicks_http.py."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from matching.conversions import click_param
from service.billing.clicks import ClickSigner
from tests import test_clicks_http as shared
from tests.conftest import ADMIN_KEY, auth
from tests.test_clicks_http import AD, ADV_KEY, CMP_ID, OLD_KEY, World, token_of

# the shared module's fixtures: its one-ad index (built once), its app and its seeded world
index_dir, fast_client, world = shared.index_dir, shared.fast_client, shared.world

FLOOR = 10
CPA_BID = 5000


def post(client: TestClient, key: str, **body: Any) -> Any:
    return client.post("/v1/conversions", json=body, headers=auth(key))


def test_cpa_ad_click_conversion_and_reports_end_to_end(fast_client, world):
    """A CPA ad is priced per conversion, its click is free and lands with admatch_click, the
    postback charges it once, the pixel counts another event free, and the reports show it all."""
    w: World = world(fast_client, floor_fen=FLOOR, total_budget_fen=100_000, cpa_event="order", cpa_bid_fen=CPA_BID)
    ad = w.one_ad()
    # alone, with the prior conversion rate 0.02: it pays the per-click floor per 0.02 conversions
    assert (ad["pays_per"], ad["conversion_event"], ad["price_fen"]) == ("conversion", "order", 500)
    claim = ClickSigner([OLD_KEY]).verify(token_of(ad["click_url"]))
    assert (claim.cpa, claim.price) == ("order", 500)

    r = w.click(ad["click_url"])
    assert r.status_code == 302
    click = click_param(r.headers["location"])
    assert click == f"{ad['impression_id']}.{CMP_ID}"
    assert w.totals()["spend_fen"] == 0 and w.totals()["clicks"] == 1

    ok = post(w.client, ADV_KEY, click=click, event="order", value_fen=129_900, order_id="SO-1")
    assert ok.status_code == 200, ok.text
    assert (ok.json()["counted"], ok.json()["charged_fen"], ok.json()["billing"]) == (True, 500, "charged")
    again = post(w.client, ADV_KEY, click=click, event="order", value_fen=129_900, order_id="SO-1")
    assert (again.status_code, again.json()["counted"], again.json()["reason"]) == (200, False, "duplicate_order")

    px = w.client.get("/v1/conv.gif", params={"click": click, "event": "lead", "value": "100"})
    assert (px.status_code, px.headers["content-type"], px.content[:6]) == (200, "image/gif", b"GIF89a")

    t = w.totals()
    assert (t["spend_fen"], t["conversions"], t["conversion_value_fen"]) == (500, 2, 130_000)
    assert (t["conversion_rate"], t["cost_per_conversion_fen"], t["roi"]) == (2.0, 250.0, 260.0)

    kw = w.client.get(f"/v1/reports/campaigns/{CMP_ID}/keywords", headers=auth(ADV_KEY))
    assert kw.status_code == 200, kw.text
    [row] = kw.json()["rows"]
    assert row["key"] in AD["keywords"]
    assert (row["impressions"], row["clicks"], row["spend_fen"], row["conversions"]) == (1, 1, 500, 2)
    cats = w.client.get(f"/v1/reports/campaigns/{CMP_ID}/categories", headers=auth(ADV_KEY),
                        params={"granularity": "day", "format": "csv"})
    assert cats.status_code == 200 and cats.text.startswith("key,name,period,impressions,clicks")
    ads = w.client.get(f"/v1/reports/campaigns/{CMP_ID}/ads", headers=auth(ADV_KEY)).json()
    assert [(x["key"], x["conversions"], x["spend_fen"]) for x in ads["rows"]] == [(ad["ad_id"], 2, 500)]


def test_postback_errors_are_clear_and_the_pixel_never_fails(fast_client, world):
    """Bad input is a 422 naming the field; an unknown click a 404, another advertiser's click a
    403; the pixel answers a GIF to anything."""
    w: World = world(fast_client, floor_fen=FLOOR, total_budget_fen=100_000)
    r = w.click(w.one_ad()["click_url"])
    click = click_param(r.headers["location"])
    assert r.status_code == 302 and click

    bad = post(w.client, ADV_KEY, click=click, event="Order!", value_fen=-1)
    assert bad.status_code == 422
    assert {f["field"] for f in bad.json()["fields"]} >= {"event", "value_fen"}
    unknown = post(w.client, ADV_KEY, click="0" * 32 + "." + CMP_ID, event="order")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_click")
    other = w.client.post("/v1/advertisers", json={"name": "别家"}, headers=auth(ADMIN_KEY)).json()["api_key"]
    theirs = post(w.client, other, click=click, event="order", order_id="X")
    assert (theirs.status_code, theirs.json()["error"]) == (403, "other_advertiser")
    pub = w.client.post("/v1/conversions", json={"click": click, "event": "order"}, headers=auth("pub-key"))
    assert pub.status_code == 403

    for params in [{}, {"click": click, "event": "order", "value": "abc"}, {"click": "x" * 5000, "event": "e"},
                   {"click": click, "event": "order", "order": "\x00"}]:
        px = w.client.get("/v1/conv.gif", params=params)
        assert (px.status_code, px.headers["content-type"]) == (200, "image/gif"), params
    assert w.totals()["conversions"] == 0

    counted = post(w.client, ADV_KEY, click=click, event="order", value_fen=5000, order_id="A-1")
    assert counted.json()["counted"] and counted.json()["billing"] == "cpc" and counted.json()["charged_fen"] == 0
    assert w.totals()["conversions"] == 1 and w.totals()["conversion_value_fen"] == 5000


def test_campaign_api_takes_a_cpa_bid_with_its_event(fast_client, world):
    """A campaign is created and switched to pay per conversion with cpa_event and cpa_bid_fen
    together; one without the other is a 422 saying so."""
    w: World = world(fast_client)
    h = auth(ADV_KEY)
    lone = w.client.post("/v1/campaigns", json={"name": "x", "cpa_event": "lead"}, headers=h)
    assert lone.status_code == 422 and "cpa_bid_fen" in lone.text
    made = w.client.post("/v1/campaigns", json={"name": "在线对话", "cpa_event": "conversation_started",
                                                "cpa_bid_fen": 800}, headers=h)
    assert made.status_code == 201, made.text
    assert (made.json()["cpa_event"], made.json()["cpa_bid_fen"]) == ("conversation_started", 800)
    back = w.client.patch(f"/v1/campaigns/{made.json()['id']}", json={"cpa_event": None, "cpa_bid_fen": None},
                          headers=h)
    assert back.status_code == 200 and back.json()["cpa_event"] is None
