"""Index builds from the catalog in Redis (used by ``admatch index build`` and the cron script)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from index import artifact, builder
from matching.types import Ad
from service.store.catalog import CatalogStore
from service.store.records import AdRecord


def to_domain(rec: AdRecord) -> Ad:
    return Ad(id=rec.id, campaign_id=rec.campaign_id, advertiser_id=rec.advertiser_id, title=rec.title,
              keywords=tuple(rec.keywords), bid_fen=rec.bid_fen, description=rec.description,
              landing_url=rec.landing_url, keyword_bids=tuple(rec.keyword_bids),
              negative_keywords=tuple(rec.negative_keywords),
              match_types=tuple((str(k), str(v)) for k, v in rec.match_types),
              target_categories=tuple(rec.target_categories), exclude_categories=tuple(rec.exclude_categories),
              allow_sensitive=bool(rec.allow_sensitive))


def build_and_publish(ads: list[Ad], root: Path, *, progress: bool = False, catalog_changes: str | None = None,
                      approx_min_ads: int = builder.APPROX_MIN_ADS) -> artifact.Manifest:
    """Build an index over ``ads`` and publish it under ``root`` (atomic). The dense index is
    approximate (IVF) from ``approx_min_ads`` ads on; evaluations lower it to measure IVF on small tracks."""
    def bar(items: Iterable[Ad]) -> Iterable[Ad]:
        return tqdm(items, total=len(ads), desc="segmenting ads", unit="ad", disable=not progress)
    catalog = builder.build(ads, progress=bar, approx_min_ads=approx_min_ads)
    return artifact.save(catalog, root, catalog_changes=catalog_changes)


async def build_from_catalog(store: CatalogStore, root: Path, *, progress: bool = False,
                             approx_min_ads: int = builder.APPROX_MIN_ADS) -> artifact.Manifest:
    """Build from the servable ads, publish, and announce the version to serving processes.

    The change-log position is read *before* the catalog, so every change the build may have
    missed comes after it; serving processes replay those on top of this version.
    """
    position = await store.change_log_position()
    ads = [to_domain(r) for r in await store.servable_ads()]
    manifest = build_and_publish(ads, root, progress=progress, catalog_changes=position,
                                 approx_min_ads=approx_min_ads)
    await store.announce_index(manifest.version)
    return manifest
