"""One analysis queue entry: what a worker needs of a page to compute its profile.

Fields of a stream entry (written by ``enqueue.lua``, read by :func:`decode`): ``k`` page key,
``ti`` normalised title, ``b`` normalised body cut by :func:`cut_body`, ``t`` enqueue time (unix
seconds). The body is cut to what :func:`matching.semantic.passages` reads, so a 200 kB page
costs the queue a few kB and the worker computes the same vector as from the whole page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from matching.semantic import MAX_PASSAGES, PASSAGE_CHARS
from matching.types import Page

# passages() reads at most MAX_PASSAGES × PASSAGE_CHARS characters of "title\nbody"; one passage
# more keeps whole the sentence that decides how the last passage read is packed.
_READ_CHARS = (MAX_PASSAGES + 1) * PASSAGE_CHARS
MAX_PAGE_KEY = 256


class BadEntry(ValueError):
    """A queue entry that cannot be read as a page (a worker acknowledges it and moves on)."""


def cut_body(page: Page) -> str:
    """The part of ``page.body`` that passages() can read (the title may open the body: kept)."""
    return page.body[:len(page.title) + 1 + _READ_CHARS]


@dataclass(frozen=True, slots=True)
class QueuedPage:
    page_key: str
    title: str
    body: str
    enqueued_at: float

    @property
    def page(self) -> Page:
        return Page(title=self.title, body=self.body)

    def args(self) -> tuple[str, str, str, str]:
        """The values of the entry's fields k, ti, b, t, in that order (enqueue.lua's ARGV)."""
        return self.page_key, self.title, self.body, repr(self.enqueued_at)


def decode(fields: Mapping[bytes, bytes]) -> QueuedPage:
    """An entry's fields as a client without response decoding returns them; raises BadEntry."""
    try:
        key = fields[b"k"].decode()
        title = fields[b"ti"].decode()
        body = fields[b"b"].decode()
        t = float(fields[b"t"])
    except (KeyError, UnicodeDecodeError, ValueError, TypeError, AttributeError) as e:
        raise BadEntry(f"fields {sorted(fields)[:8]!r}: {type(e).__name__}: {e}") from e
    if not key or len(key) > MAX_PAGE_KEY or not math.isfinite(t):
        raise BadEntry(f"page key of {len(key)} characters or enqueue time {t!r}")
    return QueuedPage(key, title, body, t)
