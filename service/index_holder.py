"""The serving process's current index snapshot and its hot swap.

Contract: :attr:`IndexHolder.snapshot` is either None (nothing built yet) or a fully loaded,
verified snapshot; a new version is loaded off the event loop and swapped in by one reference
assignment, so a request never sees a half-loaded index. A damaged new version is refused
(logged) and the old one keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from index import artifact
from matching.matcher import MatchConfig, Matcher
from matching.types import Ad

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Snapshot:
    manifest: artifact.Manifest
    matcher: Matcher
    ads_by_id: Mapping[str, Ad] = field(default_factory=dict)

    @classmethod
    def of(cls, manifest: artifact.Manifest, matcher: Matcher) -> Snapshot:
        return cls(manifest, matcher, {ad.id: ad for ad in matcher.catalog.ads})


class IndexHolder:
    def __init__(self, root: Path, config: MatchConfig) -> None:
        self.root = Path(root)
        self.config = config
        self.snapshot: Snapshot | None = None
        self.last_error: str | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> bool:
        """Load the published version if it differs from the one serving; True if swapped."""
        async with self._lock:
            version = artifact.current_version(self.root)
            if version is None or (self.snapshot and self.snapshot.manifest.version == version):
                return False
            try:
                manifest, catalog = await asyncio.to_thread(artifact.load, self.root, version)
            except artifact.ArtifactError as e:
                self.last_error = str(e)
                log.error("index version %s refused: %s", version, e)
                return False
            self.snapshot = Snapshot.of(manifest, Matcher(catalog, self.config))
            self.last_error = None
            log.info("serving index version %s (%d ads)", version, manifest.ad_count)
            return True

    async def poll(self, interval: float) -> None:
        """Refresh forever every ``interval`` seconds (run as a task; cancelled at shutdown)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except Exception:  # keep polling: the next version may be fine
                log.exception("index refresh failed")
