"""What the request paths use of the click-through model: the snapshot, the log, the click count.

:class:`CtrServing` is what ``place_ads`` gets: the refreshed model (``stats.model``), whether
the auction ranks by it (``ADMATCH_CTR_ENABLED``; when off, quality is the relevance score and
cells and the log are still written, so the model has data the day it is switched on), the
impression log and the exploration draw's random source. :func:`record_click` is what the click
route does after the billing decision (the simulator calls it too).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from service.billing.billing import Billing, ClickDecision
from service.billing.clicks import ClickClaim
from service.ctr.log import ImpressionLog
from service.ctr.stats import CtrStats


@dataclass
class CtrServing:
    stats: CtrStats
    log: ImpressionLog
    rank: bool = True
    rng: random.Random = field(default_factory=random.Random)


async def record_click(billing: Billing, log: ImpressionLog | None, claim: ClickClaim,
                       decision: ClickDecision, now: float | None = None) -> bool:
    """Count a genuine click in its impression's cell and log it; False when it is not genuine
    (see :meth:`Billing.count_click`). Buffered like impressions: no Redis call when buffered."""
    if not await billing.count_click(claim, decision):
        return False
    if log is not None:
        log.append({"ev": "click", "t": round(time.time() if now is None else now, 3), "imp": claim.imp,
                    "cmp": claim.cmp, "ad": claim.ad, "reason": decision.reason})
        await log.after_append()
    return True
