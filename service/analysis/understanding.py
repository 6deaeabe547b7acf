"""How a serving process learns a page's sentence-encoder vector, without waiting for it.

Three sources, in order: the profile an ``admatch analyzer`` worker stored for the page (shared by
every process through Redis); for a *short* page (a headline and a few words, at most
``inline_chars`` characters of title and body), an encoding made right here — a few
milliseconds, which the request path can afford (docs/performance.md); otherwise nothing yet: the
page is ranked on its first view and offered to the analysis queue.

A page whose ranking was cached before its profile existed is looked up again at most once every
``recheck_s`` seconds per process, so a page requested a thousand times a second costs one
profile read a second, and it is re-ranked with its vector on the first request after the worker
finished.

Contract: :meth:`PageUnderstanding.vector` never raises for Redis (a failed read is no vector)
and never blocks on the encoder's loading: until the encoder is loaded, short pages are queued
like long ones.
"""

from __future__ import annotations

import logging

import numpy as np
from cachetools import TTLCache

from matching.encoder import SentenceEncoder
from matching.semantic import page_vector
from matching.types import Page
from service.analysis.profiles import ProfileStore
from service.analysis.queue import AnalysisQueue

log = logging.getLogger(__name__)

RECHECK_SECONDS = 1.0


class PageUnderstanding:
    """Page vectors for the request path (see the module docstring)."""

    def __init__(self, queue: AnalysisQueue, profiles: ProfileStore, encoder: SentenceEncoder, *,
                 inline_chars: int, recheck_s: float = RECHECK_SECONDS, tracked: int = 10_000) -> None:
        self.queue = queue
        self.profiles = profiles
        self.encoder = encoder
        self.inline_chars = inline_chars
        self._checked: TTLCache[str, bool] = TTLCache(maxsize=tracked, ttl=recheck_s)

    def due(self, key: str) -> bool:
        """Whether a cached first-view ranking of page ``key`` should look for its profile now."""
        if key in self._checked:
            return False
        self._checked[key] = True
        return True

    async def stored(self, key: str) -> np.ndarray | None:
        """The profile a worker stored for the page, if any."""
        self._checked[key] = True
        return await self.profiles.get(key)

    def inline(self, page: Page) -> np.ndarray | None:
        """The vector of a short page, encoded here; None for a long page or while the encoder loads."""
        if len(page.title) + len(page.body) > self.inline_chars or not getattr(self.encoder, "loaded", True):
            return None
        return page_vector(page, self.encoder)

    async def keep(self, key: str, vector: np.ndarray) -> None:
        """Share an inline vector with the other processes (best effort)."""
        try:
            await self.profiles.put(key, vector)
        except Exception:  # another process encodes the short page again: a few ms
            log.debug("could not store the profile of page %s", key, exc_info=True)

    def offer(self, key: str, page: Page) -> None:
        self.queue.offer(key, page)
