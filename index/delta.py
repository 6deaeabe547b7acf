"""Ads changed since a snapshot was built, vectorised in that snapshot's spaces.

A live catalog change (a keyword set created or edited through the API) cannot wait for the
nightly rebuild, and refitting TF-IDF/LSA for one ad would move every other ad's vector. Instead
the changed ads are placed in the *serving* snapshot's spaces: segmented with its tokenizer (their
keywords added to its dictionary first, so pages segment them whole from then on), weighted with
its catalog IDF, projected with its LSA components, profiled in its character n-gram space. Words
the snapshot's vocabulary lacks are appended to a copy of it
(:meth:`matching.vectors.TextVectorizer.extended`: highest catalog idf, no LSA loading), so they
count in the keyword, TF-IDF and coverage figures; the next full build gives them LSA loadings.

Their sentence-encoder vectors (``semantic``: raw encoder rows, computed when the ad was uploaded
or edited) are projected into the snapshot's semantic space, so they score on the analysed blend
as the snapshot's ads do.

Contract: :func:`delta_catalog` returns a :class:`PreparedCatalog` over ``ads`` only, sharing
``base``'s tokenizer, its vectorizer extended by the ads' new words, with an identity neighbour graph (a changed ad's support is
its own score: it has no neighbourhood in the snapshot yet), and semantic rows exactly when
``base`` has a semantic space and ``semantic`` is given. ``base`` is not otherwise modified.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from index.builder import assemble, make_faiss
from matching.catalog import PreparedCatalog
from matching.documents import ad_document
from matching.semantic import quantize
from matching.types import Ad


def delta_catalog(base: PreparedCatalog, ads: Sequence[Ad], semantic: np.ndarray | None = None) -> PreparedCatalog:
    """The catalog of ``ads`` in ``base``'s vector spaces (see the module docstring); ``semantic``:
    the ads' raw encoder vectors, rows in ``ads`` order."""
    base.tokenizer.add_words(kw for ad in ads for kw in ad.keywords)
    docs = [ad_document(ad, base.tokenizer) for ad in ads]
    vec = base.vectorizer.extended(t for doc in docs for t in doc)
    matrix = vec.sparse(docs)
    chars = base.chars.for_ads(ads) if base.chars is not None else None
    space = base.semantic if semantic is not None else None
    rows = None
    if space is not None:
        assert semantic is not None
        rows = quantize(space.project(semantic)) if len(ads) else np.zeros((0, space.dim), dtype=np.int8)
    return assemble(ads, base.tokenizer, vec, matrix,
                    dense_index=make_faiss(vec.dense(matrix), np.arange(len(ads), dtype=np.int64)),
                    chars=chars, neighbours=sp.identity(len(ads), dtype=np.float32, format="csr"),
                    semantic=space, ad_semantic=rows)
