"""Every BidRequest of the reference pack (../shared/data/openrtb) gets a valid response or a 204."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.openrtb.wire import BidResponse
from tests.openrtb.conftest import Bidder

PACK = Path("/work/shared/data/openrtb")
REQUESTS = sorted([*PACK.glob("examples/req-*.json"), *PACK.glob("zh/*.json")]) if PACK.is_dir() else []


@pytest.mark.skipif(not REQUESTS, reason="reference pack /work/shared/data/openrtb absent")
def test_every_pack_request_answers_without_5xx(bidder: Bidder) -> None:
    """Each pack request: 200 with a BidResponse whose bids name its imps and meet their floors, or 204."""
    for path in REQUESTS:
        req = json.loads(path.read_text("utf-8"))
        r = bidder.bid(req)
        assert r.status_code in (200, 204), f"{path.name}: {r.status_code} {r.text}"
        if r.status_code == 204:
            continue
        resp = BidResponse.model_validate(r.json())
        assert resp.id == req["id"]
        imps = {i["id"]: i for i in req["imp"]}
        for sb in resp.seatbid:
            for b in sb.bid:
                assert b.impid in imps and b.price > 0 and b.mtype == 1, path.name
                imp = imps[b.impid]
                if imp.get("bidfloorcur", "USD") == resp.cur:
                    assert b.price >= imp.get("bidfloor", 0), path.name
