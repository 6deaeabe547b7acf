"""Semantic evidence: pages and ads as sentence-encoder vectors (:mod:`matching.encoder`).

- A page is read as *passages*: its title and body packed at sentence ends into pieces of at most
  :data:`PASSAGE_CHARS` characters, the first :data:`MAX_PASSAGES` of them (2,048 characters:
  the encoder averages over tokens, so one vector over a whole long article blurs it, and
  measured on the evaluation pages the mean of the passages' vectors ranked better than one vector
  of the whole text or of its first 512 characters; 8 passages ranked as well as 16 or all of
  them at half the encoding cost). Its vector is that mean, L2-normalised.
- An ad is read as its title followed by its keywords (:func:`ad_text`), one text, normalised like
  pages. Encoding each keyword alone and pooling the vectors, or the keywords without the title,
  ranked no better in the blend (docs/relevance.md).
- :class:`SemanticSpace` is where the catalog keeps the ads' vectors: the encoder's own space for
  catalogs under ``approx_min_ads`` ads; above it the catalog's leading principal components
  (fitted on the ads alone, as LSA is), so a million ads cost 128 bytes each instead of 512.
  Ad rows are stored as int8 (unit vectors × 127; cosines within about 0.005).
- The signal is the cosine *above* what two texts about unrelated topics share under this
  encoder (:attr:`SemanticSpace.baseline`: the mean cosine between the IAB taxonomy's tier-1
  topics, each read as its Chinese name and seed terms, in the space — about 0.14 for USE), so a
  page about nothing the catalog sells scores near zero and falls under the relevance floor.

Contract: :func:`page_vector` and :func:`ad_text` are deterministic; :meth:`SemanticSpace.project`
returns L2-normalised float32 rows of the space's dimension; :meth:`SemanticSpace.cosines` of a
projected page against stored ad rows lies in [-1, 1].
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from matching.categories import load_taxonomy
from matching.encoder import SentenceEncoder
from matching.text import normalize
from matching.types import Ad, Page

PASSAGE_CHARS = 256
MAX_PASSAGES = 8
# Above this many ads the space is the catalog's leading principal components (see the module).
REDUCED_DIM = 128
BASELINE_SEEDS = 12  # seed terms per topic read for the baseline (an ad's keyword count)
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;\n])")


def passages(page: Page) -> list[str]:
    """The page's title and body in sentence-packed pieces of ≤ PASSAGE_CHARS, at most MAX_PASSAGES."""
    body = page.body
    if page.title and body.startswith(page.title):  # many articles repeat their title as line one
        body = body[len(page.title):]
    text = f"{page.title}\n{body}" if page.title else body
    out: list[str] = []
    cur = ""
    for sentence in _SENTENCE_END.split(text):
        if cur and len(cur) + len(sentence) > PASSAGE_CHARS:
            out.append(cur)
            cur = ""
        cur += sentence
        while len(cur) > PASSAGE_CHARS:
            out.append(cur[:PASSAGE_CHARS])
            cur = cur[PASSAGE_CHARS:]
        if len(out) >= MAX_PASSAGES:
            break
    if cur.strip() and len(out) < MAX_PASSAGES:
        out.append(cur)
    return [p for p in (s.strip() for s in out) if p]


def analysed_chars(page: Page) -> int:
    """How much of the page :func:`passages` reads (what a queue entry needs to carry)."""
    return sum(len(p) for p in passages(page))


def pool(vectors: np.ndarray) -> np.ndarray:
    """The L2-normalised mean of passage vectors (zeros for none)."""
    if len(vectors) == 0:
        return np.zeros(vectors.shape[1] if vectors.ndim == 2 else 0, dtype=np.float32)
    v = np.asarray(vectors, dtype=np.float32).mean(axis=0)
    n = float(np.linalg.norm(v))
    return v / n if n else v


def page_vector(page: Page, encoder: SentenceEncoder) -> np.ndarray:
    """The page's vector in the encoder's space: the pooled vectors of its passages."""
    parts = passages(page)
    if not parts:
        return np.zeros(encoder.dim, dtype=np.float32)
    return pool(encoder.encode(parts))


def ad_text(ad: Ad) -> str:
    """What the encoder reads of an ad: its title, then its keywords, normalised like pages."""
    return text_of(ad.title, ad.keywords)


def text_of(title: str, keywords: Sequence[str]) -> str:
    """:func:`ad_text` of an ad with this title and these (plain) keywords: the title, then each
    keyword the title does not already say (every word of the ad read once)."""
    title = normalize(title)
    rest = [k for k in dict.fromkeys(normalize(k) for k in keywords) if k and k not in title]
    return " ".join((title, *rest)) if title else " ".join(rest)


def text_key(encoder_name: str, text: str) -> str:
    """Content hash under which an ad text's vector is kept (encoder and text)."""
    return hashlib.blake2b(f"{encoder_name}\x00{text}".encode(), digest_size=16).hexdigest()


def unit_rows(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float32)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.maximum(norms, 1e-12)


@dataclass(frozen=True, slots=True)
class SemanticSpace:
    """The catalog's semantic space: the encoder's (``basis`` None) or a projection of it."""

    encoder: str  # SentenceEncoder.name the raw vectors came from
    mean: np.ndarray  # subtracted before projecting (zeros when basis is None)
    basis: np.ndarray | None  # encoder dim × space dim, orthonormal columns
    baseline: float = 0.0  # mean cosine of unrelated topics in this space (see the module)

    @property
    def dim(self) -> int:
        return int(self.basis.shape[1]) if self.basis is not None else int(self.mean.shape[0])

    @classmethod
    def fit(cls, encoder: SentenceEncoder, raw: np.ndarray, *, approx_min_ads: int,
            dim: int = REDUCED_DIM) -> SemanticSpace:
        """The encoder's space under ``approx_min_ads`` ads, else the ads' leading ``dim``
        principal components (deterministic: an eigendecomposition of the covariance); the
        baseline measured in it."""
        raw = np.asarray(raw, dtype=np.float32)
        d = raw.shape[1]
        if len(raw) < approx_min_ads or dim >= d:
            return cls(encoder.name, np.zeros(d, dtype=np.float32), None).with_baseline(encoder)
        mean = raw.mean(axis=0, dtype=np.float64)
        cov = np.zeros((d, d))
        for start in range(0, len(raw), 65_536):  # bounded work memory at a million ads
            block = raw[start:start + 65_536].astype(np.float64) - mean
            cov += block.T @ block
        values, vectors = np.linalg.eigh(cov)
        order = np.argsort(-values)[:dim]
        basis = vectors[:, order]
        basis *= np.where(basis[np.abs(basis).argmax(axis=0), np.arange(dim)] < 0, -1.0, 1.0)  # sign fixed
        return cls(encoder.name, mean.astype(np.float32), basis.astype(np.float32)).with_baseline(encoder)

    def with_baseline(self, encoder: SentenceEncoder) -> SemanticSpace:
        """This space with its :attr:`baseline` measured on the taxonomy's tier-1 topics."""
        taxonomy = load_taxonomy()
        topics = [c for c in taxonomy if c.parent is None]
        unit = self.project(encoder.encode([text_of(c.name_zh, taxonomy.seeds(c.id)[:BASELINE_SEEDS])
                                            for c in topics]))
        sims = unit @ unit.T
        pairs = sims[np.triu_indices(len(topics), 1)]
        return replace(self, baseline=float(pairs.mean()) if len(pairs) else 0.0)

    def signal(self, cos: np.ndarray) -> np.ndarray:
        """Cosines → the semantic signal in [0, 1]: the share of the way from the baseline to 1."""
        b = self.baseline
        return np.clip((cos - b) / (1.0 - b), 0.0, 1.0)

    def project(self, raw: np.ndarray) -> np.ndarray:
        """Raw encoder rows (or one vector) → unit rows of this space."""
        m = np.atleast_2d(np.asarray(raw, dtype=np.float32))
        if self.basis is not None:
            m = (m - self.mean) @ self.basis
        return unit_rows(m)

    def state(self) -> dict[str, np.ndarray]:
        out = {"semantic_mean": self.mean, "semantic_encoder": np.array(self.encoder),
               "semantic_baseline": np.array(self.baseline, dtype=np.float64)}
        if self.basis is not None:
            out["semantic_basis"] = self.basis
        return out

    @classmethod
    def from_state(cls, z: dict[str, np.ndarray]) -> SemanticSpace:
        return cls(str(z["semantic_encoder"]), z["semantic_mean"], z.get("semantic_basis"),
                   float(z["semantic_baseline"]))


def quantize(unit: np.ndarray) -> np.ndarray:
    """Unit rows → int8 rows (× 127)."""
    return np.clip(np.rint(np.asarray(unit, dtype=np.float32) * 127.0), -127, 127).astype(np.int8)


def cosines(rows: np.ndarray, stored: np.ndarray, norms: np.ndarray, page: np.ndarray) -> np.ndarray:
    """Cosines of the projected ``page`` with the int8 ``stored`` rows ``rows`` (``norms``: their norms)."""
    q = stored[rows].astype(np.float32)
    return (q @ page) / np.maximum(norms[rows], 1e-6)


def row_norms(stored: np.ndarray) -> np.ndarray:
    return np.linalg.norm(stored.astype(np.float32), axis=1) if len(stored) else np.zeros(0, np.float32)
