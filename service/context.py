"""What the running app holds: settings, the Redis client, the catalog, the index snapshot."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from matching.brand import AdCategories
from service.analysis.profiles import ProfileStore
from service.analysis.queue import AnalysisQueue
from service.analysis.understanding import PageUnderstanding
from service.billing.billing import Billing
from service.billing.clicks import ClickSigner
from service.conversions.rates import ConversionRates
from service.conversions.recorder import Conversions
from service.ctr.serving import CtrServing
from service.resilience.breaker import CircuitBreaker
from service.resilience.spool import ClickSpool
from service.serving.ad_vectors import AdVectors
from service.serving.blocked import BlockedCache
from service.serving.catalog_feed import CatalogFeed
from service.serving.index_holder import IndexHolder
from service.serving.page_cache import PageCache
from service.serving.url_pages import UrlPages
from service.settings import Settings
from service.store.catalog import CatalogStore
from service.tag.sites import SiteStore
from service.tag.views import Views

log = logging.getLogger(__name__)


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
    sites: SiteStore  # the ad tag's site tokens
    ad_categories: AdCategories  # IAB categories of ads, for publishers' blocked categories
    views: Views  # viewable impressions (the tag's beacon)
    url_pages: UrlPages  # pages by URL, for requests that carry only the URL (OpenRTB)
    feed: CatalogFeed | None = None
    ad_vectors: AdVectors | None = None  # None: the semantic signal is off (ADMATCH_SEMANTIC=false)
    # Page analysis (service/analysis/), None when ADMATCH_ANALYSIS_ENABLED is false: offer pages
    # to ``analysis`` (never blocks), read what workers learned of them from ``profiles``.
    analysis: AnalysisQueue | None = None
    profiles: ProfileStore | None = None
    # Page vectors for the request path (profiles, short pages inline); None without analysis or encoder.
    understanding: PageUnderstanding | None = None
    # The click-through model's snapshot, the impression log, exploration (service/ctr/).
    ctr: CtrServing | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    breaker: CircuitBreaker | None = None  # of the Redis client: open while Redis is unavailable
    spool: ClickSpool | None = None  # clicks redirected while Redis could not decide them
    conversions: Conversions | None = None
    conversion_rates: ConversionRates | None = None  # CPA ads' predicted conversion rates
