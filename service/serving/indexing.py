"""Index builds from the catalog in Redis (used by ``admatch index build`` and the cron script)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from index import artifact, builder
from index.encoding import encode_texts
from index.vector_cache import VectorCache
from matching.encoder import SentenceEncoder
from matching.semantic import ad_text
from matching.types import Ad
from service.serving.ad_vectors import AdVectors
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
                      approx_min_ads: int = builder.APPROX_MIN_ADS,
                      semantic: tuple[SentenceEncoder, np.ndarray] | None = None) -> artifact.Manifest:
    """Build an index over ``ads`` and publish it under ``root`` (atomic). The dense index is
    approximate (IVF) from ``approx_min_ads`` ads on; evaluations lower it to measure IVF on small
    tracks. ``semantic``: the encoder and the ads' raw vectors (:func:`catalog_vectors`)."""
    def bar(items: Iterable[Ad]) -> Iterable[Ad]:
        return tqdm(items, total=len(ads), desc="segmenting ads", unit="ad", disable=not progress)
    catalog = builder.build(ads, progress=bar, approx_min_ads=approx_min_ads, semantic=semantic)
    return artifact.save(catalog, root, catalog_changes=catalog_changes)


async def catalog_vectors(ads: list[Ad], root: Path, vectors: AdVectors, *, progress: bool = False) -> np.ndarray:
    """Raw encoder vectors of ``ads``: from the index root's vector cache (the last build's),
    then from Redis (ads uploaded since), and the rest encoded here (worker processes when many);
    the cache is then replaced by these ads' vectors."""
    encoder = vectors.encoder
    names = vectors.text_keys(ads)
    held, rows = VectorCache.load(root, encoder.name, encoder.dim).lookup(names)
    missing = np.flatnonzero(~held)
    if len(missing):
        got, fetched = await vectors.fetch([names[i] for i in missing])
        rows[missing[got]] = fetched[got]
        missing = missing[~got]
    if len(missing):
        with tqdm(total=len(missing), desc="encoding ads", unit="ad", disable=not progress) as bar:
            rows[missing] = encode_texts([ad_text(ads[i]) for i in missing], encoder, bar.update)
    VectorCache.of(names, rows).save(root, encoder.name)
    return rows


async def build_from_catalog(store: CatalogStore, root: Path, *, progress: bool = False,
                             approx_min_ads: int = builder.APPROX_MIN_ADS,
                             vectors: AdVectors | None = None) -> artifact.Manifest:
    """Build from the servable ads, publish, and announce the version to serving processes.

    With ``vectors`` the index carries the ads' sentence-encoder vectors (the semantic signal).
    The change-log position is read *before* the catalog, so every change the build may have
    missed comes after it; serving processes replay those on top of this version.
    """
    position = await store.change_log_position()
    ads = [to_domain(r) for r in await store.servable_ads()]
    semantic = None
    if vectors is not None:
        semantic = (vectors.encoder, await catalog_vectors(ads, root, vectors, progress=progress))
    manifest = build_and_publish(ads, root, progress=progress, catalog_changes=position,
                                 approx_min_ads=approx_min_ads, semantic=semantic)
    await store.announce_index(manifest.version)
    return manifest
