"""Pseudonyms: what Redis keys and click tokens hold instead of a user key or an IP address.

A pseudonym is HMAC-SHA256 under a secret (``ADMATCH_PSEUDONYM_SECRET``, or one generated once and
kept in Redis), so it cannot be reversed by hashing candidate values: with a plain hash, a phone
number given as a user key came back from its frequency key in a fraction of a second (11 digits
are a small space). Every process and replica must use the same secret, or frequency caps and rate
limits split; a new secret starts every count afresh.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from hashlib import sha256

PSEUDONYM_CHARS = 32  # 128 bits of the HMAC, hex
CACHED = 65_536  # recent values whose pseudonym is kept (about 8 MB at most)


class Pseudonyms:
    def __init__(self, secret: bytes | None = None) -> None:
        """``secret``: shared by every process; None draws one for this object alone (tests, tools)."""
        self._key = secret if secret is not None else secrets.token_bytes(32)
        # a match asks for its reader's pseudonym up to three times (budget states, impressions, click
        # tokens), and readers come back: the HMAC once per value while it is recent
        self.of = functools.lru_cache(maxsize=CACHED)(self._of)

    def _of(self, value: str) -> str:
        """The pseudonym of a user key or client id: stable for one secret, unlinkable without it."""
        return hmac.new(self._key, value.encode("utf-8"), sha256).hexdigest()[:PSEUDONYM_CHARS]
