"""Stand-in sentence encoders for pure and unit tests (matching.encoder.SentenceEncoder protocol).

The real encoder is exercised by tests that check meaning (tests/test_semantic.py,
tests/test_semantic_matching.py, tests/test_semantic_serving.py); these fakes are for tests of
plumbing — spaces, caches, artifacts, graphs — where any fixed vectors do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np


class FakeEncoder:
    """Each text → a unit vector drawn from a generator seeded by the text's hash: the same text
    gives the same vector in any process, different texts nearly orthogonal ones."""

    loaded = True

    def __init__(self, dim: int = 64, name: str = "fake-encoder/1") -> None:
        self.dim = dim
        self.name = name

    def load(self) -> None:
        pass

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(f"{self.name}\x00{t}".encode(), digest_size=8).digest(), "little")
            out[i] = np.random.default_rng(seed).standard_normal(self.dim)
        return out / np.linalg.norm(out, axis=1, keepdims=True) if len(texts) else out


class CountingEncoder:
    """Wraps an encoder and records every text it was asked to encode (in this process)."""

    def __init__(self, inner: FakeEncoder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.texts: list[str] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        return self.inner.encode(texts)
