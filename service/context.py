"""What the running app holds: settings, the Redis client, the catalog, the index snapshot."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import redis.asyncio as aioredis

from service.billing.billing import Billing
from service.billing.clicks import ClickSigner
from service.serving.index_holder import IndexHolder
from service.serving.page_cache import PageCache
from service.settings import Settings
from service.store.catalog import CatalogStore

if TYPE_CHECKING:  # catalog_feed imports BlockedCache from here
    from service.serving.catalog_feed import CatalogFeed

log = logging.getLogger(__name__)


class BlockedCache:
    """In-process copy of the ``blocked`` set, refreshed when the catalog version changes
    (by :class:`service.serving.catalog_feed.CatalogFeed`).

    A paused or deleted ad or campaign stops serving within one feed interval on every worker
    and replica without touching Redis on the request path.
    """

    def __init__(self, catalog: CatalogStore) -> None:
        self._catalog = catalog
        self._version = -1
        self.members: frozenset[str] = frozenset()

    async def refresh(self) -> None:
        version = await self._catalog.version()
        if version != self._version:
            self.members = frozenset(await self._catalog.blocked())
            self._version = version

    def allows(self, ad_id: str, campaign_id: str) -> bool:
        m = self.members
        return not m or (f"ad:{ad_id}" not in m and f"cmp:{campaign_id}" not in m)


@dataclass
class AppContext:
    settings: Settings
    redis: aioredis.Redis
    catalog: CatalogStore
    index: IndexHolder
    blocked: BlockedCache
    billing: Billing
    signer: ClickSigner
    page_cache: PageCache
    feed: CatalogFeed | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
