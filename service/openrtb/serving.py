"""What the app's lifespan opens for the bidder: counters, the URL pages, the fetcher and their tasks."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from service.context import AppContext
from service.openrtb.bidder import OpenRtb
from service.openrtb.exchanges import ExchangeStats, ExchangeStore
from service.openrtb.fetcher import FetchLimits, PageFetcher


def start_openrtb(c: AppContext) -> tuple[OpenRtb, ExchangeStore, list[asyncio.Task[None]]]:
    s = c.settings
    pages = c.url_pages
    fetcher = None
    tasks = []
    stats = ExchangeStats(c.redis)
    tasks.append(asyncio.create_task(stats.run(), name="exchange-counters"))
    if s.fetch_enabled:
        fetcher = PageFetcher(pages, c.analysis.offer if c.analysis is not None else None,
                              FetchLimits(max_bytes=s.fetch_max_bytes, timeout_s=s.fetch_timeout_seconds,
                                          max_redirects=s.fetch_max_redirects,
                                          allow_hosts=tuple(h.lower() for h in s.fetch_allow_hosts)),
                              dedupe_s=s.analysis_dedupe_seconds)
        tasks.append(asyncio.create_task(fetcher.run(), name="page-fetcher"))
    rates = {k.upper(): Decimal(repr(v)) for k, v in s.currency_rates.items()}
    state = OpenRtb(stats=stats, pages=pages, fetcher=fetcher, rates=rates, min_tmax_ms=s.openrtb_min_tmax_ms)
    return state, ExchangeStore(c.redis), tasks
