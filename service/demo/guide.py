"""What ``admatch demo`` prints once the demo is loaded: its keys and curl lines that use them.

The keys are the demo's fixed ones (public: never expose a demo server): the publisher's, one
advertiser's and, unless ``ADMATCH_ADMIN_KEY`` is set, the demo's admin key."""

from __future__ import annotations

import json
import shlex

from service.demo.loader import (
    DEMO_ADMIN_KEY,
    DEMO_ADVERTISER,
    DEMO_ADVERTISER_CAMPAIGN,
    DEMO_PUBLISHER,
    DEMO_PUBLISHER_KEY,
    advertiser_key,
)
from service.openrtb.demo import DEMO_BID_REQUEST, DEMO_EXCHANGE_KEY

PAGE = {"title": "楼市新政", "text": "本市新开楼盘首付两成，房贷利率下调"}


def curl_lines(base: str) -> list[str]:
    """Requests a newcomer can paste: a match as the publisher, campaigns and a report as the advertiser."""
    pub = f"-H 'Authorization: Bearer {DEMO_PUBLISHER_KEY}'"
    adv = f"-H 'Authorization: Bearer {advertiser_key(DEMO_ADVERTISER)}'"
    body = json.dumps({"publisher_id": DEMO_PUBLISHER, "slots": 3, "page": PAGE}, ensure_ascii=False)
    return [
        f"curl -s {base}/v1/match {pub} -H 'Content-Type: application/json' -d {shlex.quote(body)}",
        f"curl -s {base}/v1/campaigns {adv}",
        f"curl -s '{base}/v1/reports/campaigns/{DEMO_ADVERTISER_CAMPAIGN}?granularity=day' {adv}",
    ]


def openrtb_line(base: str, path: str) -> str:
    """An exchange's bid request for the demo bidder (204 = no bid)."""
    body = json.dumps(DEMO_BID_REQUEST, ensure_ascii=False)
    return (f"curl -s {base}{path} -H 'Authorization: Bearer {DEMO_EXCHANGE_KEY}' "
            f"-H 'Content-Type: application/json' -d {shlex.quote(body)}")


def guide(base: str, version: str, ad_count: int, *, own_admin_key: bool, openrtb_path: str = "/openrtb2/bid") -> str:
    admin = "your ADMATCH_ADMIN_KEY" if own_admin_key else DEMO_ADMIN_KEY
    lines = "\n".join(f"  {line}" for line in curl_lines(base))
    return (f"\ndemo catalog loaded, index {version} with {ad_count} ads. The demo's keys:\n\n"
            f"  publisher   {DEMO_PUBLISHER_KEY}  (publisher id {DEMO_PUBLISHER})\n"
            f"  advertiser  {advertiser_key(DEMO_ADVERTISER)}  (advertiser id {DEMO_ADVERTISER}, "
            f"campaign {DEMO_ADVERTISER_CAMPAIGN})\n"
            f"  admin       {admin}\n"
            f"  exchange    {DEMO_EXCHANGE_KEY}  (OpenRTB 2.6 bidder, exchange demo-exchange)\n\nTry:\n\n{lines}\n\n"
            f"OpenRTB 2.6 (an exchange's bid request; 204 = no bid):\n  {openrtb_line(base, openrtb_path)}\n\n"
            f"The demo article with the ad tag, in a browser:\n"
            f"  {base}/demo/article/ev-sales  (Traditional: {base}/demo/article/ev-sales-hant)\n\n"
            f"More in README.md (Using it). API docs: {base}/docs   (Ctrl-C stops the server)\n")
