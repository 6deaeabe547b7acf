"""What ``admatch demo`` prints once the demo is loaded: the console's URL, the keys to sign in
and call the API with, what traffic was replayed, and curl lines that use the keys.

The keys are the demo's fixed ones (public: never expose a demo server): the publisher's, one
advertiser's and, unless ``ADMATCH_ADMIN_KEY`` is set, the demo's admin key."""

from __future__ import annotations

import json
import shlex
import textwrap

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


NO_TRAFFIC = ("No simulated traffic was replayed (--no-traffic or ADMATCH_DEMO_TRAFFIC=false): the charts fill "
              "as the demo is used.")


def guide(base: str, version: str, ad_count: int, *, own_admin_key: bool, openrtb_path: str = "/openrtb2/bid",
          traffic: str | None = None) -> str:
    """``traffic``: what the replay of simulated traffic did (service/demo/traffic.py); None: none was asked for."""
    admin = "your ADMATCH_ADMIN_KEY" if own_admin_key else DEMO_ADMIN_KEY
    lines = "\n".join(f"  {line}" for line in curl_lines(base))
    return (f"\ndemo catalog loaded, index {version} with {ad_count} ads.\n\n"
            f"The console (charts, campaigns, reports), in a browser:  {base}/console/\n"
            f"Sign in to it with the advertiser's, the publisher's or the admin key (the API takes them too):\n\n"
            f"  advertiser  {advertiser_key(DEMO_ADVERTISER)}  (advertiser id {DEMO_ADVERTISER}, "
            f"campaign {DEMO_ADVERTISER_CAMPAIGN})\n"
            f"  publisher   {DEMO_PUBLISHER_KEY}  (publisher id {DEMO_PUBLISHER})\n"
            f"  admin       {admin}\n"
            f"  exchange    {DEMO_EXCHANGE_KEY}  (OpenRTB 2.6 bid requests only, exchange demo-exchange)\n\n"
            f"{textwrap.fill(traffic or NO_TRAFFIC, width=100)}\n\nTry:\n\n{lines}\n\n"
            f"OpenRTB 2.6 (an exchange's bid request; 204 = no bid):\n  {openrtb_line(base, openrtb_path)}\n\n"
            f"The demo article with the ad tag, in a browser:\n"
            f"  {base}/demo/article/ev-sales  (Traditional: {base}/demo/article/ev-sales-hant)\n\n"
            f"More in README.md (Using it). API docs: {base}/docs   (Ctrl-C stops the server)\n")
