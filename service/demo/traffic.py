"""A day of simulated traffic, replayed through the real serving and click path when ``admatch
demo`` starts, so that reports (and the console's charts) have a day of data at once.

What is replayed: :attr:`Plan.page_views` views of the demo pages over the 24 hours before now,
more in the evening (service/demo/readers.py). Every page view is matched at its own time by
:func:`service.serving.page_match.match_page`, as /v1/match and the tag's match are (relevance
ranking, budgets, auction, signed tokens, impressions and click-through cells counted, the
impression log), in a context built as the app's lifespan builds it. Readers see
most ads (viewable impressions, :class:`service.tag.views.Views`), click a few (the click route's
rules, :func:`service.billing.click_flow.pending_click`, and :class:`ClickJob`: rate limit, the
click script, the click-through count), and some clicks convert
(:class:`service.conversions.recorder.Conversions`, by pixel or postback). Invalid clicks come as
they would: a reader clicking twice (duplicate), a crawler (bot), a click sooner than a person
clicks (too_fast), an old tab (expired) and a click farm on one address (rate_limited).
Events run in time order, each at its time; none is later than now.

Contract: the same seed and ``now`` give the same day (impression ids aside); a few thousand
impressions in a few seconds; once per database: :data:`keys.DEMO_TRAFFIC` is claimed first, so a
second start on the same data replays nothing (a replay that failed half way is not redone
either: nothing is counted twice). Spend is a small share of the demo campaigns' budgets.
"""

from __future__ import annotations

import heapq
import json
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from matching.brand import AdCategories
from matching.categories import CategoryClassifier
from matching.conversions import CvrPrior, click_id
from matching.ctr import CtrConfig
from matching.encoder import default_encoder
from matching.matcher import MatchConfig
from service.app import click_keys, pseudonym_secret
from service.billing.billing import Billing, Clock
from service.billing.click_flow import ClickJob, RateLimits, pending_click
from service.billing.clicks import ClickClaim, ClickSigner
from service.billing.pseudonyms import Pseudonyms
from service.context import AppContext
from service.conversions.rates import ConversionRates
from service.conversions.recorder import Conversions
from service.ctr.log import ImpressionLog
from service.ctr.serving import CtrServing
from service.ctr.stats import CtrStats
from service.demo import readers
from service.demo.loader import DEMO_PUBLISHER
from service.serving.ad_vectors import AdVectors
from service.serving.blocked import BlockedCache
from service.serving.index_holder import IndexHolder
from service.serving.page_cache import PageCache
from service.serving.page_match import PageIn, match_page
from service.serving.url_pages import UrlPages
from service.settings import Settings
from service.store import keys
from service.store.catalog import CatalogStore
from service.tag.sites import SiteStore
from service.tag.views import Views

DAY_S = 86400.0
FLUSH_EVERY = 200  # page views between writes of the gathered impression counts
BEACONS_AT_ONCE = 500  # viewable-impression beacons recorded in one pipeline


@dataclass(frozen=True, slots=True)
class Plan:
    page_views: int = 1500
    seed: int = 17
    base_ctr: float = 0.045  # a reader's click chance on a top-slot ad of relevance 0.6 (readers.click_probability)
    view_share: float = 0.7  # impressions a person keeps in view for a second (viewable)
    crawler_share: float = 0.02  # page views by a crawler; it follows each ad link with crawler_clicks
    crawler_clicks: float = 0.2
    repeat_share: float = 0.08  # charged clicks clicked again a few seconds later (duplicate)
    too_fast_share: float = 0.04  # clicks a fraction of a second after the ad showed
    stale_share: float = 0.04  # clicks from a tab left open past the click window (expired)
    conversion_share: float = 0.12  # charged clicks that convert, minutes to hours later
    farm_pages: int = 14  # a click farm's page views (and clicks) within one minute, one evening


@dataclass
class Summary:
    start: float
    end: float
    page_views: int = 0
    requested_slots: int = 0  # the slots the page views asked for (the publisher's fill rate)
    impressions: int = 0
    viewable: int = 0
    clicks: int = 0  # charged
    invalid: Counter[str] = field(default_factory=Counter)
    spend_fen: int = 0
    conversions: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "page_views": self.page_views,
                "requested_slots": self.requested_slots, "impressions": self.impressions, "viewable": self.viewable, "clicks": self.clicks,
                "invalid": dict(sorted(self.invalid.items())), "spend_fen": self.spend_fen,
                "conversions": self.conversions, "seconds": round(self.seconds, 2)}

    def line(self) -> str:
        invalid = ", ".join(f"{n} {reason}" for reason, n in sorted(self.invalid.items())) or "none"
        return (f"{self.page_views} page views, {self.impressions} impressions ({self.viewable} viewable), "
                f"{self.clicks} charged clicks ({self.spend_fen / 100:.2f} yuan spent), {self.conversions} "
                f"conversions; invalid clicks: {invalid}")


Event = Callable[[], Awaitable[None]]


class Replay:
    """One day's events in time order, through the components a serving process has."""

    def __init__(self, r: aioredis.Redis, settings: Settings, plan: Plan) -> None:
        self.r, self.s, self.plan = r, settings, plan
        self.clock = Clock(settings.timezone)
        self._queue: list[tuple[float, int, Event]] = []
        self._seq = 0
        self._now = 0.0  # the time of the event running
        self._beacons: list[ClickClaim] = []

    async def _setup(self) -> None:
        """What a serving process holds (service/app.py), with impression counts gathered until
        flushed; the index as published, its pages ranked as on their first view (no analyzer)."""
        s, r = self.s, self.r
        billing = Billing(r, self.clock, click_window_s=s.click_window_seconds, buffered=True,
                          pseudonyms=Pseudonyms(await pseudonym_secret(s, r)),
                          ctr_ttl_s=(s.ctr_window_days + 2) * 86400,
                          attribution_window_s=s.attribution_window_seconds)
        implog = ImpressionLog(r, s.impression_log_maxlen, buffered=True)
        stats = CtrStats(r, self.clock, config=CtrConfig(exploration=s.ctr_exploration), window_days=s.ctr_window_days)
        # the encoder by name only (the index's vectors are kept; no model is loaded)
        holder = IndexHolder(s.index_root, MatchConfig(floor=s.relevance_floor),
                             AdVectors(r, default_encoder()) if s.semantic else None)
        await holder.refresh()
        if holder.snapshot is None:
            raise RuntimeError(f"no index under {s.index_root} to replay the demo's traffic with")
        catalog = CatalogStore(r)
        self.conversions = Conversions(r, billing, window_s=s.attribution_window_seconds)
        c = self.c = AppContext(
            settings=s, redis=r, catalog=catalog, index=holder, blocked=BlockedCache(catalog), billing=billing,
            signer=ClickSigner(await click_keys(s, r)), page_cache=PageCache(None, local_size=64, ttl_s=2 * DAY_S),
            sites=SiteStore(r), ad_categories=AdCategories(CategoryClassifier()),
            views=Views(r, self.clock, window_s=s.click_window_seconds),
            url_pages=UrlPages(r, ttl_s=s.profile_ttl, local_size=64),
            ctr=CtrServing(stats, implog, rank=s.ctr_enabled, rng=random.Random(self.plan.seed)),
            conversions=self.conversions, conversion_rates=ConversionRates(r, CvrPrior(s.cvr_prior, s.cvr_prior_clicks)))
        await c.blocked.refresh()
        self.publisher = await catalog.serving_publisher(DEMO_PUBLISHER)
        self.billing, self.implog, self.signer, self.views = billing, implog, c.signer, c.views
        self.limits = RateLimits(s.clicks_per_minute, s.clicks_per_hour)

    def _at(self, t: float, event: Event) -> None:
        if t < self.end:  # nothing after now
            self._seq += 1
            heapq.heappush(self._queue, (t, self._seq, event))

    async def run(self, now: float) -> Summary:
        t0 = time.perf_counter()
        self.end = now
        out = self.out = Summary(start=now - DAY_S, end=now)
        await self._setup()
        day_rng = random.Random(self.plan.seed)
        pages = readers.traffic_pages()
        times = readers.visit_times(day_rng, self.plan.page_views, now - DAY_S, now, self.clock.tz)
        for i, t in enumerate(times):
            rng = random.Random(self.plan.seed * 1_000_003 + i)  # each page view's own draws
            page = readers.pick_page(rng, pages)
            self._at(t, self._page_view(t, page, readers.reader(rng, self.plan.crawler_share), rng))
        self._click_farm(day_rng, times, pages)
        while self._queue:
            self._now, _, event = heapq.heappop(self._queue)
            await event()
        await self._send_beacons()
        await self.billing.flush()
        await self.implog.flush()
        out.seconds = time.perf_counter() - t0
        return out

    def _click_farm(self, rng: random.Random, times: list[float], pages: list[readers.DemoPage]) -> None:
        """One evening, one address loads the demo advertiser's page ``farm_pages`` times in a
        minute and clicks its top ad each time: the first ones are charged, then rate_limited."""
        evening = [t for t in times if self.clock.at(t).hour in (20, 21) and t < self.end - 120]
        if not evening or not self.plan.farm_pages:
            return
        start = rng.choice(evening) // 60 * 60 + 2  # the clicks fall within one minute
        page = next(p for p in pages if p.id == "page-realty-loan")
        farm = readers.Reader(readers.FARM_IP, readers.BROWSERS[0])
        for k in range(self.plan.farm_pages):
            t = start + 3.5 * k
            self._at(t, self._page_view(t, page, farm, random.Random(rng.random()), farm=True))

    def _page_view(self, t: float, page: readers.DemoPage, who: readers.Reader, rng: random.Random,
                   farm: bool = False) -> Event:
        async def run() -> None:
            m = await match_page(self.c, self.publisher, PageIn(title=page.title, text=page.text, url=page.url),
                                 page.slots, None, now=t)
            placements = m.placements
            out = self.out
            out.page_views += 1
            out.requested_slots += page.slots
            out.impressions += len(placements)
            if out.page_views % FLUSH_EVERY == 0:
                await self.billing.flush()
            for x in placements:
                slot = x.win.slot
                if not who.crawler and rng.random() < self.plan.view_share:
                    self._beacon(t + rng.uniform(1.2, 8.0), self.signer.verify(x.token))
                if farm:
                    if slot == 0:
                        self._at(t + 2.5, self._click(x.token, who, rng, follow=False))
                elif who.crawler:
                    if rng.random() < self.plan.crawler_clicks:
                        self._at(t + rng.uniform(1.5, 4.0), self._click(x.token, who, rng, follow=False))
                elif rng.random() < readers.click_probability(self.plan.base_ctr, x.candidate.score, slot):
                    self._at(t + self._delay(rng), self._click(x.token, who, rng, follow=True))
        return run

    def _delay(self, rng: random.Random) -> float:
        u = rng.random()
        if u < self.plan.too_fast_share:
            return rng.uniform(0.2, 0.7)
        if u < self.plan.too_fast_share + self.plan.stale_share:
            return self.s.click_window_seconds * rng.uniform(1.1, 2.5)
        return readers.click_delay(rng)

    def _beacon(self, t: float, claim: ClickClaim) -> None:
        """A viewable-impression beacon, sent once the ad was in view for a second. Kept for the
        end: a view counts in its impression's hour whenever it comes, so order does not matter."""
        if t < self.end and self.views.in_window(claim, t):
            self._beacons.append(claim)

    async def _send_beacons(self) -> None:
        for i in range(0, len(self._beacons), BEACONS_AT_ONCE):
            self.out.viewable += await self.views.record_many(self._beacons[i:i + BEACONS_AT_ONCE])

    def _click(self, token: str, who: readers.Reader, rng: random.Random, *, follow: bool) -> Event:
        async def run() -> None:
            claim = self.signer.verify(token)
            t = self._now
            pending = pending_click(claim, t, who.user_agent, who.ip, window_s=self.s.click_window_seconds,
                                    min_delay_s=self.s.click_min_delay_seconds)
            decision = await ClickJob(pending).run(self.billing, self.limits, self.implog)
            if not decision.charged:
                self.out.invalid[decision.reason] += 1
                return
            self.out.clicks += 1
            self.out.spend_fen += decision.amount_fen
            if not follow:
                return
            if rng.random() < self.plan.repeat_share:
                self._at(t + rng.uniform(0.8, 5.0), self._click(token, who, rng, follow=False))
            if rng.random() < self.plan.conversion_share:
                self._at(t + readers.conversion_delay(rng), self._conversion(click_id(claim.imp, claim.cmp),
                                                                             claim.adv, rng))
        return run

    def _conversion(self, click: str, advertiser: str, rng: random.Random) -> Event:
        """An order (a value, an order id; now and then its pixel fires twice) or a lead, by the
        landing page's pixel or the advertiser's postback."""
        order = rng.random() < 0.7
        event, value = ("order", rng.randrange(2_000, 80_000)) if order else ("lead", 0)
        order_id = f"demo-{rng.getrandbits(48):012x}" if order else None
        sender = advertiser if rng.random() < 0.5 else None
        refire = order and rng.random() < 0.1

        async def run() -> None:
            outcome = await self.conversions.record(click, event, value, order_id, advertiser=sender, now=self._now)
            self.out.conversions += outcome.counted
            self.out.spend_fen += outcome.amount_fen
            if refire:
                self._at(self._now + rng.uniform(2.0, 30.0), self._conversion_again(click, event, value, order_id))
        return run

    def _conversion_again(self, click: str, event: str, value: int, order_id: str | None) -> Event:
        async def run() -> None:
            await self.conversions.record(click, event, value, order_id, now=self._now)  # duplicate_order
        return run


async def replay_day(r: aioredis.Redis, settings: Settings, plan: Plan | None = None,
                     now: float | None = None) -> Summary | None:
    """Replay the day before ``now`` (default: the clock's) into this database, unless one was
    replayed into it before (None then: see :func:`replayed`)."""
    now = time.time() if now is None else now
    if not await r.set(keys.DEMO_TRAFFIC, json.dumps({"start": now - DAY_S, "end": now}), nx=True):
        return None
    summary = await Replay(r, settings, plan or Plan()).run(now)
    await r.set(keys.DEMO_TRAFFIC, json.dumps({**summary.as_dict(), "done": True}))
    return summary


async def replayed(r: aioredis.Redis) -> dict[str, Any] | None:
    """What the replay into this database recorded (``done`` false: it did not finish), or None."""
    raw = await r.get(keys.DEMO_TRAFFIC)
    return None if raw is None else dict(json.loads(raw))


@asynccontextmanager
async def bulk_writes(r: aioredis.Redis, settings: Settings) -> AsyncIterator[None]:
    """The embedded server (``ADMATCH_REDIS_URL`` unset: the demo's own) syncs its append-only file
    once a second for the block, then as configured again: with ``always`` the replay would wait
    for thousands of fsyncs (each click, view and flush). An external Redis is left alone."""
    if settings.redis_url is not None or settings.embedded_appendfsync != "always":
        yield
        return
    await r.config_set("appendfsync", "everysec")
    try:
        yield
    finally:
        await r.config_set("appendfsync", settings.embedded_appendfsync)


async def demo_traffic(r: aioredis.Redis, settings: Settings) -> str:
    """Replay the day into this database unless that was done before; what ``admatch demo`` prints of it."""
    async with bulk_writes(r, settings):
        summary = await replay_day(r, settings)
    if summary is not None:
        return f"A day of simulated traffic was replayed ({summary.seconds:.1f} s): {summary.line()}."
    before = await replayed(r) or {}
    clock = Clock(settings.timezone)
    start, end = (clock.at(float(before.get(k, 0))).strftime("%Y-%m-%d %H:%M") for k in ("start", "end"))
    if not before.get("done"):
        return (f"A replay of simulated traffic ({start} to {end}) started in this data directory before and "
                "did not finish; it is not replayed again (a new data directory gets a whole day).")
    return (f"This data directory has its day of simulated traffic from its first start ({start} to {end}, "
            f"{settings.timezone}); it is not replayed again.")
