"""The OpenRTB endpoint over HTTP, against a real app, Redis and index."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tests.conftest import ADMIN_KEY, auth
from tests.helpers import new_ad, new_advertiser, new_campaign, reload_index
from tests.openrtb.conftest import Bidder, new_exchange
from tests.openrtb.requests import realty_two_imps, telecom


def _today(bidder: Bidder) -> str:
    """Today in the billing timezone the reports' days are in (not the machine's: between 16:00 and
    24:00 UTC, Asia/Shanghai is already a day ahead)."""
    return datetime.now(bidder.client.app.state.ctx.billing.clock.tz).date().isoformat()


def _bids(r) -> list[dict]:  # type: ignore[no-untyped-def]
    assert r.status_code == 200, r.text
    return [b for sb in r.json()["seatbid"] for b in sb["bid"]]


def test_bids_the_relevant_ad_with_labelled_markup(bidder: Bidder) -> None:
    """A telecom article gets the telecom ad as a banner bid in CNY at or above its floor."""
    r = bidder.bid(telecom())
    body = r.json()
    (b,) = _bids(r)
    assert body["id"] == "t-telecom" and body["cur"] == "CNY"
    assert b["impid"] == "1" and b["crid"] == bidder.telecom and b["mtype"] == 1
    assert (b["w"], b["h"]) == (300, 250) and b["price"] >= 0.1
    assert b["adomain"] == ["chinatel.example.com"]
    assert "广告" in b["adm"] and 'rel="sponsored noopener"' in b["adm"] and "/v1/click/" in b["adm"]
    assert "${AUCTION_PRICE}" in b["burl"] and "/openrtb2/bill/" in b["burl"] and "/openrtb2/win/" in b["nurl"]


def test_price_is_click_price_times_ctr(bidder: Bidder) -> None:
    """The CPM bid is at most the telecom ad's 120-fen bid × 2 % × 1000 × the 0.7 share, in CNY."""
    (b,) = _bids(bidder.bid(telecom()))
    assert 0.1 <= b["price"] <= 1.20 * 0.02 * 1000 * 0.7


def test_floor_above_value_is_no_bid(bidder: Bidder) -> None:
    """A floor no ad can reach gets 204 and an empty body."""
    req = telecom()
    req["imp"][0]["bidfloor"] = 120.0
    r = bidder.bid(req)
    assert r.status_code == 204 and r.content == b""


def test_usd_floor_converted(bidder: Bidder) -> None:
    """A USD floor is compared in the response currency at the configured rate (7.2 CNY)."""
    req = telecom()
    req["imp"][0].update(bidfloor=0.5, bidfloorcur="USD")
    (b,) = _bids(bidder.bid(req))
    assert b["price"] >= 0.5 * 7.2 - 1e-9
    req["imp"][0].update(bidfloor=5.0)  # 36 CNY: above what the ad is worth
    assert bidder.bid(req).status_code == 204


def test_answers_in_usd_when_only_usd_accepted(bidder: Bidder) -> None:
    """Two imps, one ad each, never the same ad twice, in USD."""
    req = realty_two_imps()
    r = bidder.bid(req)
    bids = _bids(r)
    assert r.json()["cur"] == "USD"
    assert len({b["crid"] for b in bids}) == len(bids) and {b["impid"] for b in bids} <= {"a", "b"}
    assert bids[0]["impid"] == "a" and bids[0]["crid"] == bidder.realty and (bids[0]["w"], bids[0]["h"]) == (728, 90)


def test_blocked_category_and_advertiser(bidder: Bidder) -> None:
    """bcat (Content Taxonomy 3.0 ids) and badv keep the matching ad out."""
    (b,) = _bids(bidder.bid(telecom()))
    assert b["cattax"] == 7 and "80DV8O" in b["cat"]  # Communication: what a phone-plan ad is about
    for req in (telecom(cattax=7, bcat=["80DV8O"]), telecom(cattax=9, bcat=b["cat"]),
                telecom(badv=["chinatel.example.com"])):
        r = bidder.bid(req)
        assert r.status_code == 204 or all(x["crid"] != bidder.telecom for x in _bids(r))
    assert _bids(bidder.bid(telecom(badv=["other.example.com"], cattax=7, bcat=["441"])))


def test_iab1_bcat(bidder: Bidder) -> None:
    """IAB 1.0 codes (no cattax) are mapped: IAB21 real estate blocks the housing ad."""
    r = bidder.bid(realty_two_imps(bcat=["IAB21"]))
    assert r.status_code == 204 or all(b["crid"] != bidder.realty for b in _bids(r))


def test_no_impression_until_billing_notice(bidder: Bidder) -> None:
    """A bid counts no impression; its burl counts one, once; nurl counts a win, once."""
    (b,) = _bids(bidder.bid(telecom()))
    today = _today(bidder)

    def report() -> dict:  # type: ignore[type-arg]
        r = bidder.client.get(f"/v1/reports/exchanges/{bidder.exchange_id}?from={today}&to={today}",
                              headers=auth(ADMIN_KEY))
        assert r.status_code == 200, r.text
        return dict(r.json()["days"][0])

    assert report()["bids"] == 1 and report()["wins"] == 0 and report()["billed"] == 0
    path = lambda u: re.sub(r"^https?://[^/]+", "", u).replace("${AUCTION_PRICE}", "1.0")  # noqa: E731
    for _ in range(2):
        assert bidder.client.get(path(b["nurl"])).status_code == 204
        assert bidder.client.get(path(b["burl"])).status_code == 204
    row = report()
    assert row["wins"] == 1 and row["billed"] == 1 and row["win_rate"] == 1.0


def test_test_mode_counts_nothing(bidder: Bidder) -> None:
    """test:1 still bids, but its notices count no win or billed impression."""
    (b,) = _bids(bidder.bid(telecom(test=1)))
    path = re.sub(r"^https?://[^/]+", "", b["burl"])
    assert bidder.client.get(path).status_code == 204
    today = _today(bidder)
    r = bidder.client.get(f"/v1/reports/exchanges/{bidder.exchange_id}?from={today}&to={today}",
                          headers=auth(ADMIN_KEY))
    assert r.json()["days"][0]["billed"] == 0


def test_markup_escapes_advertiser_text(bidder: Bidder, build_index: Callable[[], Any]) -> None:
    """An ad titled with markup wins and appears in adm as text, never as a tag."""
    _, adv = new_advertiser(bidder.client, "坏人")
    cid = new_campaign(bidder.client, adv)
    bad = new_ad(bidder.client, adv, cid, title="<script>alert(1)</script>手机套餐", bid_fen=5000)["id"]
    build_index()
    reload_index(bidder.client)
    (b,) = _bids(bidder.bid(telecom()))
    assert b["crid"] == bad
    assert "<script>" not in b["adm"] and "&lt;script&gt;alert(1)&lt;/script&gt;" in b["adm"]


def test_bad_request_is_400_naming_field(bidder: Bidder) -> None:
    """A body without imp gets 400 naming imp; not JSON gets 400; never 5xx."""
    r = bidder.bid({"id": "x"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_bid_request" and "imp" in r.json()["detail"]
    r = bidder.client.post("/openrtb2/bid", content=b"\xff{", headers=bidder.headers)
    assert r.status_code == 400


def test_keys(bidder: Bidder) -> None:
    """No key → 401; a publisher or admin key → 403."""
    assert bidder.client.post("/openrtb2/bid", json=telecom()).status_code == 401
    assert bidder.client.post("/openrtb2/bid", json=telecom(), headers=auth(ADMIN_KEY)).status_code == 403


def test_nbr_body_when_exchange_asks(bidder: Bidder) -> None:
    """An exchange configured for reasons gets 200 with nbr instead of 204; tmax too small → 15."""
    _, headers = new_exchange(bidder.client, nbr_body=True)
    r = bidder.client.post("/openrtb2/bid", json=telecom(tmax=1), headers=headers)
    assert r.status_code == 200 and r.json() == {"id": "t-telecom", "seatbid": [], "nbr": 15}


def test_prebid_25_places_accepted(bidder: Bidder) -> None:
    """A request down-converted by Prebid Server (regs.ext.gdpr, source.ext.schain, imp.ext.bidder) bids."""
    req = telecom(regs={"ext": {"gdpr": 0}}, source={"ext": {"schain": {"ver": "1.0", "complete": 1, "nodes": []}}},
                  ext={"prebid": {"debug": True}})
    req["imp"][0]["ext"] = {"bidder": {"placement": "x"}, "prebid": {"is_rewarded_inventory": 0}}
    assert _bids(bidder.bid(req))


def test_traditional_only_gets_traditional_creative(bidder: Bidder) -> None:
    """wlangb allowing only Traditional Chinese gets a converted creative declared zh-Hant."""
    (b,) = _bids(bidder.bid(telecom(wlangb=["zh-Hant", "en"])))
    assert b["langb"] == "zh-Hant" and "長話" in html.unescape(b["adm"])


def test_a_campaign_paying_per_conversion_does_not_bid(bidder: Bidder, build_index: Callable[[], Any]) -> None:
    """A CPA campaign's ad, the best match by its per-click bid, never bids on an exchange (its clicks
    must stay free); the CPC telecom ad bids instead."""
    _, adv = new_advertiser(bidder.client, "按转化付费")
    cid = new_campaign(bidder.client, adv, cpa_event="order", cpa_bid_fen=50_000)
    new_ad(bidder.client, adv, cid, title="手机套餐 按单付费", bid_fen=5000)
    build_index()
    reload_index(bidder.client)
    (b,) = _bids(bidder.bid(telecom()))
    assert b["crid"] == bidder.telecom and b["cid"] != cid


def test_a_page_seen_through_match_is_ranked_from_its_text_by_url(bidder: Bidder) -> None:
    """A bid request carries only the URL of a page a publisher already sent to /v1/match: the
    bidder ranks the page's text (a real-estate article) rather than the request's bare title."""
    from tests.helpers import match, new_publisher

    url = "https://news.example.com/local/2026/city-east.html"
    bare = {"id": "t-url", "cur": ["CNY"], "imp": [{"id": "1", "banner": {"w": 300, "h": 250}, "bidfloor": 0.01}],
            "site": {"page": url, "content": {"title": "本地新闻"}}}
    assert bidder.bid(bare).status_code == 204  # nothing on the request names a product
    pid, pub = new_publisher(bidder.client)
    article = "城东新盘今日开盘，首付两成起，公积金贷款可用。购房者关心房贷利率与楼盘位置，开盘当天人气很旺。"
    r = match(bidder.client, pub, pid, {"url": url, "title": "本地新闻", "text": article})
    assert r.status_code == 200, r.text
    (b,) = _bids(bidder.bid({**bare, "id": "t-url-2"}))
    assert b["crid"] == bidder.realty
    other = {**bare, "id": "t-url-3", "site": {"page": url + "?other", "content": {"title": "本地新闻"}}}
    assert bidder.bid(other).status_code == 204  # only that URL is known
