"""Golden request → response cases in Prebid Server's adapter-fixture layout (exemplary/ happy paths,
supplemental/ edge cases): ``mockBidRequest``, ``expectedStatus`` and ``expectedBidResponses``, whose
bids are compared on the fields given (``$telecom`` / ``$realty`` name the fixture's ads; prices,
ids, markup and notice URLs vary and are checked elsewhere)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.openrtb.conftest import Bidder

CASES = sorted((Path(__file__).parent / "golden").glob("*/*.json"))


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_golden(bidder: Bidder, path: Path) -> None:
    """The response matches the fixture's expected status, currency and bids."""
    case = json.loads(path.read_text("utf-8"))
    r = bidder.bid(case["mockBidRequest"])
    assert r.status_code == case["expectedStatus"], r.text
    if r.status_code == 204:
        assert case["expectedBidResponses"] == [] and r.content == b""
        return
    body = r.json()
    refs = {"$telecom": bidder.telecom, "$realty": bidder.realty}
    (expected,) = case["expectedBidResponses"]
    assert body["cur"] == expected["currency"]
    got = [(sb["seat"], b) for sb in body["seatbid"] for b in sb["bid"]]
    assert len(got) >= len(expected["bids"])
    for want, (seat, bid) in zip(expected["bids"], got, strict=False):
        assert want["type"] == "banner" and bid["mtype"] == 1 and seat == want["seat"]
        fields: dict[str, Any] = {k: refs.get(v, v) if isinstance(v, str) else v for k, v in want["bid"].items()}
        assert {k: bid.get(k) for k in fields} == fields
