"""Typed views of replies from the project's Redis clients.

Every client the service makes has ``decode_responses=True`` (:func:`service.store.redis_conn.connect`,
:func:`service.app.open_redis`), so replies hold ``str``. redis-py annotates them as
``bytes | str`` because its types cannot see that setting; these helpers say so once, in one
place. They are casts: nothing is converted or checked at run time.
"""

from __future__ import annotations

from typing import cast

# One stream entry as XRANGE returns it: (entry id, field → value).
StreamEntry = tuple[str, dict[str, str]]


def text(reply: bytes | str) -> str:
    """A string reply (GET of a key known to exist, a set member, ...)."""
    return cast(str, reply)


def text_set(reply: set[bytes | str]) -> set[str]:
    """A SMEMBERS reply."""
    return cast(set[str], reply)


def stream_entries(reply: object) -> list[StreamEntry]:
    """An XRANGE reply (always a list, possibly empty, from a RESP2 client)."""
    return cast(list[StreamEntry], reply)
