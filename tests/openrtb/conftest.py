"""An app with a telecom and a real-estate ad indexed, and an exchange with its key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_KEY, auth
from tests.helpers import REALTY_AD, new_ad, new_advertiser, new_campaign, reload_index


@dataclass
class Bidder:
    client: TestClient
    headers: dict[str, str]
    exchange_id: str
    telecom: str
    realty: str

    def bid(self, body: dict[str, Any]) -> Any:
        return self.client.post("/openrtb2/bid", json=body, headers=self.headers)


def new_exchange(client: TestClient, **terms: Any) -> tuple[str, dict[str, str]]:
    r = client.post("/v1/exchanges", json={"name": "测试交易平台", **terms}, headers=auth(ADMIN_KEY))
    assert r.status_code == 201, r.text
    return r.json()["id"], auth(r.json()["api_key"])


@pytest.fixture
def bidder(client: TestClient, build_index: Callable[[], Any]) -> Bidder:
    _, adv = new_advertiser(client)
    cid = new_campaign(client, adv)
    telecom = new_ad(client, adv, cid, landing_url="https://www.chinatel.example.com/plan")["id"]
    realty = new_ad(client, adv, cid, **{**REALTY_AD, "landing_url": "https://house.example.net/h"})["id"]
    build_index()
    assert reload_index(client)["ad_count"] == 2
    xid, headers = new_exchange(client)
    return Bidder(client, headers, xid, telecom, realty)
