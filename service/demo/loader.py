"""Loads the demo catalog (service/demo/catalog.json) into Redis, idempotently, with fixed keys."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

from service.api.catalog_schemas import AdIn, CampaignIn
from service.errors import Conflict
from service.store.catalog import CatalogStore
from service.tag.sites import SiteStore

DEMO_PUBLISHER = "demo-news"
DEMO_PUBLISHER_KEY = "demo-publisher-key"
DEMO_ADVERTISER_KEY_PREFIX = "demo-advertiser-key-"
# The advertiser whose key the demo prints (every demo advertiser has one: the prefix + its id).
DEMO_ADVERTISER = "adv-huating-realty"
DEMO_ADVERTISER_CAMPAIGN = "cmp-huating-newhome"
# The demo's admin key, used when ADMATCH_ADMIN_KEY is not set.
DEMO_ADMIN_KEY = "demo-admin-key"
DEMO_SITE_TOKEN = "demo-site-token"


def advertiser_key(advertiser_id: str) -> str:
    return DEMO_ADVERTISER_KEY_PREFIX + advertiser_id


def demo_origins(host: str, port: int) -> list[str]:
    """The origins the demo pages are opened from: the address served on, and loopback by name and number."""
    names = {"127.0.0.1", "localhost"} | ({host} if host not in ("0.0.0.0", "::") else set())
    return sorted(f"http://{h}:{port}" for h in names)


def demo_catalog() -> dict[str, Any]:
    return json.loads(resources.files("service.demo").joinpath("catalog.json").read_text("utf-8"))


def demo_pages() -> list[dict[str, Any]]:
    return json.loads(resources.files("service.demo").joinpath("pages.json").read_text("utf-8"))


async def load_demo(store: CatalogStore, sites: SiteStore | None = None,
                    origins: Sequence[str] = ()) -> dict[str, str]:
    """Create the demo publishers, advertisers, campaigns and ads unless present; returns keys.
    With ``sites``, the first publisher's site token :data:`DEMO_SITE_TOKEN` allows ``origins``
    (replacing those of an earlier run: the demo may be served on another port)."""
    data = demo_catalog()
    keys: dict[str, str] = {}
    for pub in data["publishers"]:
        keys[pub["id"]] = DEMO_PUBLISHER_KEY
        with contextlib.suppress(Conflict):
            await store.create_publisher(pub["name"], int(pub["floor_fen"]), id=pub["id"],
                                         api_key=DEMO_PUBLISHER_KEY)
    if sites is not None and origins:
        await sites.create(data["publishers"][0]["id"], "演示新闻网", origins, token=DEMO_SITE_TOKEN)
    for adv in data["advertisers"]:
        key = advertiser_key(adv["id"])
        keys[adv["id"]] = key
        try:
            await store.create_advertiser(adv["name"], id=adv["id"], api_key=key)
        except Conflict:
            continue  # loaded before
        for cmp in adv["campaigns"]:
            c = CampaignIn.model_validate({k: cmp[k] for k in ("name", "daily_budget_fen", "total_budget_fen")})
            await store.create_campaign(adv["id"], id=cmp["id"], **c.model_dump())
            items = []
            for ad in cmp["ads"]:
                fields = AdIn.model_validate({k: v for k, v in ad.items() if k != "id"}).to_fields()
                items.append({"id": ad["id"], **fields})
            await store.create_ads(adv["id"], cmp["id"], items)
    return keys
