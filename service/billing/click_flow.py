"""A reader's click from redirect to decision.

The click route first settles what needs no Redis (token, timing, user agent) into a
:class:`PendingClick`; a :class:`ClickJob` then counts the rate limit and runs the click script
(:meth:`service.billing.billing.Billing.decide_click`). The route and the click spool's drain
(:mod:`service.resilience.spool`) decide through the same job, at the time the reader clicked, so
a click decided after an outage is decided as it would have been at once — and, the click script
being idempotent by impression id, a click decided twice is charged once.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from matching.click_rules import InvalidReason, is_bot, timing_reason
from service import metrics
from service.billing.billing import Billing, ClickDecision
from service.billing.clicks import ClickClaim
from service.ctr.log import ImpressionLog
from service.ctr.serving import record_click

FORMAT = 1


@dataclass(frozen=True, slots=True)
class PendingClick:
    claim: ClickClaim
    at: float  # when the reader clicked (unix s): its billing day and hour, its rate-limit minute
    reason: InvalidReason | None  # already invalid (expired, too fast, bot, rate limited), or None
    clients: tuple[str, ...] = ()  # rate-limit clients (IP, user key) not yet counted

    def to_json(self) -> str:
        claim = {f.name: getattr(self.claim, f.name) for f in dataclasses.fields(self.claim)}
        return json.dumps({"v": FORMAT, "claim": claim, "at": self.at,
                           "reason": self.reason.value if self.reason else None,
                           "clients": list(self.clients)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> PendingClick:
        """Raises ValueError (or KeyError, TypeError) on anything but what :meth:`to_json` wrote."""
        d: dict[str, Any] = json.loads(raw)
        if d.get("v") != FORMAT:
            raise ValueError(f"unknown spooled click format {d.get('v')!r}")
        return cls(claim=ClickClaim(**d["claim"]), at=float(d["at"]),
                   reason=InvalidReason(d["reason"]) if d["reason"] else None,
                   clients=tuple(str(c) for c in d["clients"]))


def pending_click(claim: ClickClaim, at: float, user_agent: str | None, ip: str, *, window_s: float,
                  min_delay_s: float) -> PendingClick:
    """What the click route settles before Redis: the token's age (expired, too_fast), then the
    user agent (bot); a click still valid carries its rate-limit clients (the IP, and the user
    pseudonym the token holds). The demo's replayed clicks (service/demo/traffic.py) are settled so too."""
    reason = timing_reason(claim.issued, at, window_s=window_s, min_delay_s=min_delay_s)
    if reason is None and is_bot(user_agent):
        reason = InvalidReason.BOT
    clients: tuple[str, ...] = ()
    if reason is None:
        clients = (f"ip:{ip}", f"user:{claim.user}") if claim.user else (f"ip:{ip}",)
    return PendingClick(claim=claim, at=at, reason=reason, clients=clients)


@dataclass(frozen=True, slots=True)
class RateLimits:
    per_minute: int
    per_hour: int


class ClickJob:
    """Decides one click in Redis. After a failure :attr:`click` holds what is left to do (a rate
    limit already counted is not counted again when the click is decided later)."""

    def __init__(self, click: PendingClick) -> None:
        self.click = click

    async def run(self, billing: Billing, limits: RateLimits, implog: ImpressionLog | None = None) -> ClickDecision:
        """Decide the click, then count it in the click-through model's cell and log it (when genuine)."""
        c = self.click
        if c.reason is None and c.clients:
            over = await billing.over_rate_limit(c.clients, c.at, limits.per_minute, limits.per_hour)
            self.click = c = dataclasses.replace(
                c, clients=(), reason=InvalidReason.RATE_LIMITED if over else None)
        decision = await billing.decide_click(c.claim, c.reason, c.at)
        metrics.CLICKS.labels(decision.reason).inc()
        if decision.charged:
            metrics.CHARGED_FEN.inc(decision.amount_fen)
        await record_click(billing, implog, c.claim, decision, c.at)
        return decision
