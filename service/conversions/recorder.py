"""Recording a conversion: attribution to its click, idempotency, counters and the CPA charge.

Contract of :meth:`Conversions.record`: a conversion is *counted* (in reports and conversion rates)
only when it names a valid click of ours, of the sender's own campaign, within the attribution
window, with an order id not counted before; everything else is recorded with its reason
(:class:`matching.conversions.ConversionReason`) and neither counted nor charged. A conversion of
the event a CPA ad was bought for is charged the ad's auction price per conversion, within the
campaign's budgets, in the same Lua script that counts it; sending it again (any number of times, at
once or later) charges nothing more. The decision is in Redis
(service/conversions/conversion.lua over one campaign's keys, its ledger entry hash-chained with
the click entries: service.billing.chain); an order id is first claimed for one
click in the advertiser's slot (order_claim.lua), so one order counts once across the advertiser's
campaigns.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import resources

import redis.asyncio as aioredis

from matching.conversions import ConversionReason, parse_click_id
from service.billing.billing import DAY_SPEND_TTL_S, STATS_TTL_S, Billing
from service.billing.chain import with_chain
from service.store import keys
from service.store.replies import text

ORDER_TTL_S = 400 * 86400  # an order id stays counted as long as reports reach back
STREAM_MAXLEN = 100_000  # conversions kept per campaign stream (and in the rejected stream)


def _lua(name: str) -> str:
    return resources.files("service.conversions").joinpath(name).read_text("utf-8")


@dataclass(frozen=True, slots=True)
class Outcome:
    counted: bool
    reason: ConversionReason
    amount_fen: int = 0  # charged (CPA)
    billing: str = ""  # cpc, charged, budget_exhausted, other_event; '' when not counted
    campaign_id: str | None = None
    ad_id: str | None = None


class Conversions:
    def __init__(self, r: aioredis.Redis, billing: Billing, *, window_s: float) -> None:
        self.r = r
        self.billing = billing
        self.window_ms = int(window_s * 1000)
        self._convert = r.register_script(with_chain("conversion.lua", "service.conversions"))
        self._order = r.register_script(_lua("order_claim.lua"))

    async def record(self, click: str, event: str, value_fen: int, order: str | None, *,
                     advertiser: str | None = None, now: float | None = None) -> Outcome:
        """Record one conversion. ``advertiser``: the sender's (postback); None: the pixel, which
        anyone with the click id may call. ``event`` and ``value_fen`` are checked by the caller."""
        now = time.time() if now is None else now
        parsed = parse_click_id(click)
        if parsed is None:
            return await self._reject(click, event, order, advertiser, ConversionReason.UNKNOWN_CLICK, now)
        imp, cmp = parsed
        raw_owner = await self.r.hget(keys.click_record(cmp, imp), "adv")
        if raw_owner is None:
            return await self._reject(click, event, order, advertiser, ConversionReason.UNKNOWN_CLICK, now)
        owner = text(raw_owner)
        if advertiser is not None and owner != advertiser:
            return await self._reject(click, event, order, advertiser, ConversionReason.OTHER_ADVERTISER, now)
        pre = ""
        claimed = False
        if order:
            held = text(await self._order(keys=[keys.advertiser_order(owner, order)],
                                          args=[click, ORDER_TTL_S, "claim"]))
            if held != click:
                pre = ConversionReason.DUPLICATE_ORDER.value
            claimed = held == click
        day, hour = self.billing.clock.day(now), self.billing.clock.hour(now)
        res = await self._convert(
            keys=[keys.click_record(cmp, imp), keys.orders(cmp), keys.budget(cmp), keys.spend_total(cmp),
                  keys.spend_day(cmp, day), keys.stats(cmp, hour), keys.ledger(cmp), keys.conversion_counts(cmp),
                  keys.conversions(cmp), keys.ledger_head(cmp)],
            args=[imp, event, value_fen, order or f"click:{imp}:{event}", order or "", int(now * 1000),
                  self.window_ms, day, hour, STATS_TTL_S, DAY_SPEND_TTL_S, advertiser or "", pre, STREAM_MAXLEN,
                  cmp])
        counted, amount, reason, billing, ad = res
        outcome = Outcome(counted=bool(int(counted)), reason=ConversionReason(reason), amount_fen=int(amount),
                          billing=str(billing), campaign_id=cmp, ad_id=str(ad) or None)
        if outcome.reason in (ConversionReason.UNKNOWN_CLICK, ConversionReason.OTHER_ADVERTISER):
            # the click record expired, or changed hands, between the read and the script
            return await self._reject(click, event, order, advertiser, outcome.reason, now)
        if claimed and not outcome.counted and outcome.reason != ConversionReason.DUPLICATE_ORDER:
            # a rejected conversion does not hold the order id: the order may still come with a valid click
            await self._order(keys=[keys.advertiser_order(owner, order or "")], args=[click, 0, "release"])
        if outcome.amount_fen:
            self.billing.drop_state(cmp, day)
        return outcome

    async def _reject(self, click: str, event: str, order: str | None, advertiser: str | None,
                      reason: ConversionReason, now: float) -> Outcome:
        await self.r.xadd(keys.CONVERSIONS_REJECTED, {
            "click": click[:200], "adv": advertiser or "", "event": event, "order": order or "",
            "reason": reason.value, "ts": int(now * 1000)}, maxlen=STREAM_MAXLEN, approximate=True)
        return Outcome(counted=False, reason=reason)
