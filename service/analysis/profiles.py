"""Page profiles: what a worker learned of a page, kept where every serving process finds it.

A profile is the page's sentence-encoder vector (:func:`matching.semantic.page_vector`), stored
as a Redis STRING ``am:pp:<encoder hash>:<page key>`` of little-endian float16 bytes (1 kB at
512 dimensions) with a TTL, and kept after a read in a small in-process TTL LRU. The encoder's
name is hashed into the key, so a profile computed by another encoder (another model or package
version) is never read: after an upgrade pages are simply analysed again.

Contract:
- ``get`` returns a float32 vector of ``dim`` values (a unit vector up to float16 rounding, or
  zeros for a page with no text), or None when there is no profile, it is malformed, or Redis
  fails; it never raises a Redis error (failures are logged once per change of state).
- ``put`` / ``put_many`` store profiles for ``ttl_s`` seconds; they raise the client's errors, so
  a worker leaves the page in the queue when it could not store its profile.
- The client must be created without response decoding (profiles are bytes).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable

import numpy as np
import redis.asyncio as aioredis
import redis.exceptions
from cachetools import TTLCache

from service.analysis.outage import Outage
from service.store import keys

log = logging.getLogger(__name__)

_DTYPE = np.dtype("<f2")
LOCAL_PROFILES = 10_000  # profiles kept in each process after a read (10 MB at 512 dimensions)


def encoder_hash(encoder_name: str) -> str:
    """The short hash of an encoder's name that profile keys carry."""
    return hashlib.blake2b(encoder_name.encode(), digest_size=4).hexdigest()


class ProfileStore:
    """Page profiles of one encoder (see the module contract)."""

    def __init__(self, r: aioredis.Redis, encoder_name: str, *, dim: int, ttl_s: float,
                 local_size: int = LOCAL_PROFILES) -> None:
        self._r = r
        self.encoder_name = encoder_name
        self._hash = encoder_hash(encoder_name)
        self.dim = dim
        self._ttl = max(1, round(ttl_s))
        self._local: TTLCache[str, np.ndarray] = TTLCache(maxsize=local_size, ttl=ttl_s)
        self._outage = Outage(log, "page profile reads (Redis)")

    def key(self, page_key: str) -> str:
        return keys.page_profile(self._hash, page_key)

    async def get(self, page_key: str) -> np.ndarray | None:
        """The page's profile, or None (see the module contract)."""
        hit = self._local.get(page_key)
        if hit is not None:
            return hit
        try:
            raw = await self._r.get(self.key(page_key))
        except (redis.exceptions.RedisError, OSError) as e:
            self._outage.failed(e)
            return None
        self._outage.ok()
        if raw is None:
            return None
        if not isinstance(raw, bytes) or len(raw) != self.dim * _DTYPE.itemsize:
            log.warning("page profile %s is %s, not %d float16 values; ignored", self.key(page_key),
                        f"{len(raw)} bytes" if isinstance(raw, bytes | str) else type(raw).__name__, self.dim)
            return None
        vec = np.frombuffer(raw, dtype=_DTYPE).astype(np.float32)
        vec.flags.writeable = False  # shared by every reader of the local cache
        self._local[page_key] = vec
        return vec

    def _bytes(self, vector: np.ndarray) -> bytes:
        v = np.asarray(vector, dtype=np.float32).reshape(-1)
        if v.shape[0] != self.dim:
            raise ValueError(f"a profile has {self.dim} values, not {v.shape[0]}")
        return v.astype(_DTYPE).tobytes()

    async def put(self, page_key: str, vector: np.ndarray) -> None:
        """Store one profile (raises the client's errors)."""
        await self.put_many([(page_key, vector)])

    async def put_many(self, items: Iterable[tuple[str, np.ndarray]]) -> None:
        """Store profiles in one pipeline (raises the client's errors)."""
        payload = [(self.key(k), self._bytes(v)) for k, v in items]
        if not payload:
            return
        async with self._r.pipeline(transaction=False) as p:
            for key, raw in payload:
                p.set(key, raw, ex=self._ttl)
            await p.execute()
