"""Keeps one serving process's view of the catalog current, from Redis, without a rebuild.

Every ``interval`` seconds one MGET reads the catalog version and the announced index version
(both in the ``{g}`` slot). A newer index version is loaded from the shared artifact directory;
a new catalog version refreshes the paused/deleted set and replays the change log
(``am:{g}:changes``) from the snapshot's position: each changed ad's current state is read and
the snapshot's live overlay rebuilt (:meth:`service.serving.index_holder.IndexHolder.apply_changes`).
So a keyword set created, edited, paused or deleted through the API serves — or stops — on
every worker and replica within about one interval plus the overlay rebuild.
"""

from __future__ import annotations

import asyncio
import logging

from matching.types import Ad
from service.resilience.backoff import LoopHealth
from service.serving.blocked import BlockedCache
from service.serving.index_holder import IndexHolder
from service.serving.indexing import to_domain
from service.store.catalog import CatalogStore

log = logging.getLogger(__name__)

_BATCH = 5_000  # change-log entries read per round trip


class CatalogFeed:
    def __init__(self, catalog: CatalogStore, holder: IndexHolder, blocked: BlockedCache) -> None:
        self.catalog = catalog
        self.holder = holder
        self.blocked = blocked
        self._synced: tuple[int, str | None] | None = None  # (catalog version, holder position) last synced

    async def sync(self) -> None:
        """One round: load a newer announced index, then catch up with catalog changes."""
        version, index_version = await self.catalog.feed_state()
        if index_version is not None:
            await self.holder.refresh(index_version)
        if self._synced is not None and version < self._synced[0]:
            # The catalog version went back: Redis was restored or replaced. The overlay may
            # describe ads that no longer exist: serve the built version and follow from here.
            log.warning("catalog version went back from %d to %d: live changes dropped until the next build",
                        self._synced[0], version)
            self.reset()
        if self._synced == (version, self.holder.position):
            return
        await self.blocked.refresh()
        position = self.holder.position
        if position is None:  # a version built without a change-log position: start from now
            position = await self.catalog.change_log_position()
        changed: dict[str, str] = {}  # ad id → advertiser id
        while True:
            batch, position = await self.catalog.changes_after(position, _BATCH)
            changed.update((ad_id, aid) for aid, ad_id in batch)
            if len(batch) < _BATCH:
                break
        states: dict[str, Ad | None] = {}
        for ad_id, aid in changed.items():
            rec = await self.catalog.servable_ad(aid, ad_id)
            states[ad_id] = to_domain(rec) if rec is not None else None
        if states or position != self.holder.position:
            await self.holder.apply_changes(states, position)
        self._synced = (version, self.holder.position)

    def reset(self) -> None:
        """Forget the live overlay and what was synced (see :meth:`IndexHolder.drop_changes`)."""
        self.holder.drop_changes()
        self._synced = None

    async def run(self, interval: float) -> None:
        """Sync every ``interval`` seconds (run as a task; cancelled at shutdown). While Redis is
        away (or an entry is bad) the process keeps serving what it has; the loop backs off and
        logs once when it pauses and once when it resumes."""
        health = LoopHealth("catalog feed", interval, log)
        while True:
            try:
                await self.sync()
            except Exception as e:
                delay = health.failed(e)
            else:
                delay = health.ok()
            await asyncio.sleep(delay)
