"""The serving process's current index snapshot: the published version plus live catalog changes.

Contract: :attr:`IndexHolder.snapshot` is either None (nothing built yet) or a fully loaded,
verified snapshot; a new version is loaded off the event loop and swapped in by one reference
assignment, so a request never sees a half-loaded index. A damaged new version is refused
(logged) and the old one keeps serving. Only a version newer than the serving one is loaded
(versions sort by build time), whichever way it was announced (Redis key or CURRENT file).

Live changes (:meth:`IndexHolder.apply_changes`): ads created, edited, paused or deleted since
the version was built are replayed from the catalog's change log; the snapshot then serves the
version's ads minus the replaced ones plus the changed ads that are servable now
(:class:`matching.live.LiveMatcher`). Loading a new version drops the replayed changes that
the version already contains (those logged before its ``catalog_changes`` position).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from index import artifact
from index.delta import delta_catalog
from matching.catalog import PreparedCatalog
from matching.live import LiveMatcher
from matching.matcher import MatchConfig, Matcher
from matching.types import Ad
from service.serving.ad_vectors import AdVectors

log = logging.getLogger(__name__)

# Past this many changed ads the overlay is rebuilt less eagerly than a full build would be: log it.
LARGE_OVERLAY = 20_000


@dataclass(frozen=True, slots=True)
class Snapshot:
    manifest: artifact.Manifest
    matcher: Matcher | LiveMatcher
    ads_by_id: Mapping[str, Ad] = field(default_factory=dict)
    # Identifies what this snapshot serves, for cache keys: the version, plus the change-log
    # position when live changes are applied (the same on every replica that has caught up).
    serving_id: str = ""

    @classmethod
    def of(cls, manifest: artifact.Manifest, matcher: Matcher | LiveMatcher,
           ads: Mapping[str, Ad] | None = None, serving_id: str | None = None) -> Snapshot:
        if ads is None:
            base = matcher.base if isinstance(matcher, LiveMatcher) else matcher
            ads = {ad.id: ad for ad in base.catalog.ads}
        return cls(manifest, matcher, ads, serving_id or manifest.version)


def settle_heap() -> None:
    """Move everything alive now (above all a freshly loaded index: millions of objects at 1M ads)
    out of the cyclic garbage collector's reach. Otherwise each full collection walks the whole
    index, a pause of about 190 ms at 100k ads, taken by whichever request triggers it.

    Frozen objects are still freed by reference counting; the previous version's, which a
    collection might be needed for, are unfrozen and collected once here, at load time.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class IndexHolder:
    def __init__(self, root: Path, config: MatchConfig, vectors: AdVectors | None = None) -> None:
        self.root = Path(root)
        self.config = config
        self.vectors = vectors  # the changed ads' encoder vectors; None: serve without the semantic signal
        self.snapshot: Snapshot | None = None
        self.last_error: str | None = None
        self._lock = asyncio.Lock()
        self._base: Snapshot | None = None  # the published version without live changes
        self._changed: dict[str, Ad | None] = {}  # ad id → its servable state now (None: not servable)
        self.position: str | None = None  # change-log position the snapshot reflects

    @property
    def live_changes(self) -> int:
        """How many ads the snapshot serves from the change log rather than the built version."""
        return len(self._changed)

    async def refresh(self, version: str | None = None) -> bool:
        """Load ``version`` (default: the one CURRENT names) if it is newer than the serving
        one; True if swapped."""
        async with self._lock:
            version = version or artifact.current_version(self.root)
            serving = self._base.manifest.version if self._base else None
            if version is None or (serving is not None and version <= serving):
                return False
            try:
                manifest, catalog = await asyncio.to_thread(artifact.load, self.root, version)
            except artifact.ArtifactError as e:
                self.last_error = str(e)
                log.error("index version %s refused: %s", version, e)
                return False
            self._base = Snapshot.of(manifest, Matcher(self._semantic_checked(version, catalog), self.config))
            # Changes the new version contains are dropped; those after its position are replayed
            # by the next apply_changes (from that position).
            self._changed = {}
            self.position = manifest.catalog_changes
            self.snapshot = self._base
            self.last_error = None
            settle_heap()
            log.info("serving index version %s (%d ads)", version, manifest.ad_count)
            return True

    def _semantic_checked(self, version: str, catalog: PreparedCatalog) -> PreparedCatalog:
        """The catalog as this process can serve it: without its semantic rows when pages here
        would be encoded by another encoder (or none), as vectors of two encoders don't compare."""
        if catalog.semantic is None:
            return catalog
        mine = self.vectors.encoder.name if self.vectors is not None else None
        if catalog.semantic.encoder != mine:
            log.warning("index version %s holds vectors of encoder %s, this process encodes with %s: "
                        "serving without the semantic signal; rebuild the index", version,
                        catalog.semantic.encoder, mine)
            return dataclasses.replace(catalog, semantic=None, ad_semantic=None, ad_semantic_norms=None)
        return catalog

    def drop_changes(self) -> None:
        """Serve the published version alone again (the catalog in Redis was replaced wholesale);
        the feed then replays the change log from its current end."""
        self._changed = {}
        self.position = None
        if self._base is not None:
            self.snapshot = self._base

    async def apply_changes(self, states: Mapping[str, Ad | None], position: str) -> None:
        """Overlay ads changed since the version (``states``: each changed ad's servable state
        now) and record the change-log ``position`` they bring the snapshot to."""
        async with self._lock:
            base = self._base
            if base is None:
                self.position = position
                return
            changed = {**self._changed, **states}
            live = [ad for ad in changed.values() if ad is not None]
            if len(changed) > LARGE_OVERLAY:
                log.warning("%d ads changed since index version %s: rebuild the index (admatch index build)",
                            len(changed), base.manifest.version)
            base_matcher = base.matcher
            assert isinstance(base_matcher, Matcher)
            semantic = None
            if base_matcher.catalog.semantic is not None and self.vectors is not None:
                semantic = await self.vectors.get(live)
            delta = await asyncio.to_thread(delta_catalog, base_matcher.catalog, live, semantic)
            matcher = LiveMatcher(base_matcher, Matcher(delta, self.config, base_matcher.classifier),
                                  frozenset(changed))
            ads = {k: v for k, v in base.ads_by_id.items() if k not in changed}
            ads.update((ad.id, ad) for ad in live)
            self._changed = changed
            self.position = position
            self.snapshot = Snapshot.of(base.manifest, matcher, ads, f"{base.manifest.version}@{position}")
            log.info("index version %s + %d changed ads (change log at %s)",
                     base.manifest.version, len(changed), position)

    async def poll(self, interval: float) -> None:
        """Look for a new CURRENT every ``interval`` seconds (run as a task; cancelled at shutdown)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except Exception:  # keep polling: the next version may be fine
                log.exception("index refresh failed")
