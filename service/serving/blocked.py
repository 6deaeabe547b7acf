"""Which ads and campaigns are paused or deleted, as each serving process sees it."""

from __future__ import annotations

from service.store.catalog import CatalogStore


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
