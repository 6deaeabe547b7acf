"""The demo exchange ``admatch demo`` registers: id ``demo-exchange``, key ``demo-exchange-key``."""

from __future__ import annotations

import contextlib

import redis.asyncio as aioredis

from service.errors import Conflict
from service.openrtb.exchanges import ExchangeStore

DEMO_EXCHANGE_ID = "demo-exchange"
DEMO_EXCHANGE_KEY = "demo-exchange-key"
DEMO_BID_REQUEST = {
    "id": "demo-1", "at": 2, "tmax": 200, "cur": ["CNY"],
    "imp": [{"id": "1", "banner": {"w": 300, "h": 250}, "bidfloor": 1.0, "bidfloorcur": "CNY"}],
    "site": {"page": "https://news.example.com/tech/3g.html",
             "content": {"title": "3G手机资费新政", "keywords": "手机套餐,长话,漫游,流量"}},
}


async def register_demo_exchange(r: aioredis.Redis) -> None:
    """Create the demo exchange unless it exists (idempotent)."""
    with contextlib.suppress(Conflict):
        await ExchangeStore(r).create("演示交易平台", "CNY", 0.7, id=DEMO_EXCHANGE_ID, api_key=DEMO_EXCHANGE_KEY)
