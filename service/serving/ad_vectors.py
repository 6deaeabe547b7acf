"""The ads' sentence-encoder vectors, computed once per ad text and shared through Redis.

An ad is encoded when it is created or edited (:meth:`AdVectors.store`, called by the upload
routes): its raw vector is written under its content hash (``am:vec:<encoder>:<text hash>``,
float16, base64 text as the client decodes replies, with a TTL that outlasts the time until the next nightly build), so every serving
process overlays the changed ad with its vector without encoding it again
(:meth:`AdVectors.get`), and the next build reads it instead of encoding. Builds then keep every
current ad's vector in the index root's vector cache (:mod:`index.vector_cache`), so a rebuild
encodes only ads whose text changed. An ad whose vector is in neither (Redis was flushed, the TTL
passed) is encoded where it is needed: a vector is never missing, only recomputed.

Contract: :meth:`AdVectors.get` returns one raw encoder row per ad, in order; Redis failures
cost a recomputation, never an error.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
from collections.abc import Sequence

import numpy as np
import redis.asyncio as aioredis

from index.encoding import encode_texts
from matching.encoder import SentenceEncoder
from matching.semantic import ad_text, text_key
from matching.types import Ad
from service.store import keys

log = logging.getLogger(__name__)

VECTOR_TTL_S = 14 * 86_400  # two weeks: a nightly build takes them into the vector cache well before
_PIPELINE = 512  # GETs / SETs per round trip


def encoder_key(encoder: SentenceEncoder) -> str:
    return hashlib.blake2b(encoder.name.encode(), digest_size=6).hexdigest()


class AdVectors:
    """Raw encoder vectors of ads, by content hash, through Redis (see the module docstring)."""

    def __init__(self, r: aioredis.Redis | None, encoder: SentenceEncoder) -> None:
        self._r = r
        self.encoder = encoder
        self._prefix = encoder_key(encoder)

    def text_keys(self, ads: Sequence[Ad]) -> list[str]:
        return [text_key(self.encoder.name, ad_text(ad)) for ad in ads]

    async def encode(self, ads: Sequence[Ad]) -> np.ndarray:
        """Encode ``ads`` off the event loop (a CSV of thousands of ads takes seconds)."""
        return await asyncio.to_thread(encode_texts, [ad_text(ad) for ad in ads], self.encoder)

    async def store(self, texts: Sequence[str]) -> np.ndarray:
        """Encode ad texts (:func:`matching.semantic.ad_text`) and keep their vectors in Redis,
        before the ads enter the catalog, so every serving process finds them; returns the vectors."""
        vectors = await asyncio.to_thread(encode_texts, texts, self.encoder)
        if self._r is None or not texts:
            return vectors
        try:
            names = [text_key(self.encoder.name, t) for t in texts]
            for start in range(0, len(texts), _PIPELINE):
                pipe = self._r.pipeline(transaction=False)
                for name, v in zip(names[start:start + _PIPELINE], vectors[start:start + _PIPELINE], strict=True):
                    pipe.set(keys.ad_vector(self._prefix, name), _pack(v), ex=VECTOR_TTL_S)
                await pipe.execute()
        except Exception:  # a serving process encodes the ad itself when its vector is missing
            log.warning("could not keep %d ad vectors in Redis", len(texts), exc_info=True)
        return vectors

    async def fetch(self, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(held, rows) for the content hashes ``names`` from Redis: a bool and a raw row each
        (zeros where Redis has none or cannot be read)."""
        dim = self.encoder.dim
        held = np.zeros(len(names), dtype=bool)
        out = np.zeros((len(names), dim), dtype=np.float32)
        if self._r is None or not names:
            return held, out
        try:
            for start in range(0, len(names), _PIPELINE):
                pipe = self._r.pipeline(transaction=False)
                for name in names[start:start + _PIPELINE]:
                    pipe.get(keys.ad_vector(self._prefix, name))
                for j, raw in enumerate(await pipe.execute(), start):
                    v = _unpack(raw, dim)
                    if v is not None:
                        held[j], out[j] = True, v
        except Exception:
            log.warning("could not read ad vectors from Redis: they are encoded instead", exc_info=True)
        return held, out

    async def get(self, ads: Sequence[Ad]) -> np.ndarray:
        """One raw vector per ad: from Redis, else encoded (off the event loop)."""
        held, out = await self.fetch(self.text_keys(ads))
        missing = np.flatnonzero(~held)
        if len(missing):
            out[missing] = await self.encode([ads[int(i)] for i in missing])
        return out


def _pack(v: np.ndarray) -> str:
    return base64.b64encode(np.asarray(v, dtype=np.float16).tobytes()).decode("ascii")


def _unpack(raw: object, dim: int) -> np.ndarray | None:
    if not isinstance(raw, str | bytes):
        return None
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return None
    return np.frombuffer(data, dtype=np.float16).astype(np.float32) if len(data) == dim * 2 else None
