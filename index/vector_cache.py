"""The ads' sentence-encoder vectors kept by content hash, so a rebuild encodes only changed ads.

Layout under an index root::

    ROOT/vectors/<encoder key>.npz   keys: the content hashes (matching.semantic.text_key) of the
                                     ad texts of the last build, sorted; vectors: their raw
                                     encoder vectors (float16, one row per key)

Each build reads the file of its encoder (if any), encodes only the texts it lacks, and replaces
the file atomically with the vectors of the ads it built (so the file holds one catalog's worth,
never grows without bound). A missing or unreadable file is an empty cache, never an error: the
vectors are recomputed.

Contract: :meth:`VectorCache.lookup` returns, for each requested key, whether it is held and its
vector (float32; zeros when not held).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def _path(root: Path, encoder: str) -> Path:
    name = hashlib.blake2b(encoder.encode(), digest_size=8).hexdigest()
    return Path(root) / "vectors" / f"{name}.npz"


class VectorCache:
    """Sorted content hashes and their vectors (see the module docstring)."""

    def __init__(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        self.keys = keys  # sorted, dtype <U32
        self.vectors = vectors

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def empty(cls, dim: int) -> VectorCache:
        return cls(np.zeros(0, dtype="<U32"), np.zeros((0, dim), dtype=np.float16))

    @classmethod
    def load(cls, root: Path, encoder: str, dim: int) -> VectorCache:
        path = _path(root, encoder)
        try:
            with np.load(path, allow_pickle=False) as z:
                keys, vectors = z["keys"], z["vectors"]
        except FileNotFoundError:
            return cls.empty(dim)
        except (OSError, ValueError, KeyError) as e:  # damaged: recompute rather than fail a build
            log.warning("vector cache %s unreadable (%s): encoding every ad", path, e)
            return cls.empty(dim)
        if vectors.shape != (len(keys), dim):
            log.warning("vector cache %s has shape %s for %d keys of dimension %d: ignored",
                        path, vectors.shape, len(keys), dim)
            return cls.empty(dim)
        return cls(keys, vectors)

    def lookup(self, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(held, vectors) for ``keys``: a bool per key and float32 rows (zeros where not held)."""
        want = np.asarray(keys, dtype="<U32")
        out = np.zeros((len(keys), self.vectors.shape[1]), dtype=np.float32)
        if not len(self.keys) or not len(keys):
            return np.zeros(len(keys), dtype=bool), out
        pos = np.searchsorted(self.keys, want).clip(max=len(self.keys) - 1)
        held = self.keys[pos] == want
        out[held] = self.vectors[pos[held]]
        return held, out

    def save(self, root: Path, encoder: str) -> None:
        """Replace the cache file of ``encoder`` atomically."""
        path = _path(root, encoder)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, keys=self.keys, vectors=self.vectors)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def of(cls, keys: list[str], vectors: np.ndarray) -> VectorCache:
        """A cache holding ``keys`` → ``vectors`` (duplicates kept once), sorted."""
        k = np.asarray(keys, dtype="<U32")
        uniq, first = np.unique(k, return_index=True)
        return cls(uniq, np.asarray(vectors, dtype=np.float16)[first])
