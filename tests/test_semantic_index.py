"""The semantic part of index builds and artifacts: semantic.npz round trips and is verified, the
vector cache encodes only what changed, live deltas land in the snapshot's space, and large
catalogs find their semantic neighbours approximately but well. A hash-seeded fake encoder stands
in for the real one: these are properties of the plumbing, not of meaning."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from index import artifact, builder
from index.builder import semantic_graph
from index.delta import delta_catalog
from index.encoding import encode_texts
from index.vector_cache import VectorCache
from matching.analyze import make_page
from matching.catalog import PreparedCatalog
from matching.live import LiveMatcher
from matching.matcher import Matcher
from matching.neighbours import EXHAUSTIVE_MAX_ADS, NEIGHBOURS
from matching.semantic import REDUCED_DIM, ad_text, quantize, text_key, unit_rows
from matching.types import Ad
from service.serving.ad_vectors import AdVectors
from service.serving.indexing import catalog_vectors
from tests.encoders import CountingEncoder, FakeEncoder

TOPICS = {
    "telecom": ["手机套餐", "流量", "话费", "漫游", "宽带", "携号转网"],
    "realty": ["楼盘", "首付", "房贷", "公积金", "户型", "学区房"],
    "auto": ["新能源汽车", "续航", "充电桩", "试驾", "二手车", "车险"],
    "travel": ["旅游", "机票", "酒店", "签证", "海岛", "景区"],
    "baby": ["奶粉", "纸尿裤", "早教", "宝宝", "辅食", "母婴"],
}
PER_TOPIC = 12
APPROX_MIN_ADS = 40  # below the catalog's 60 ads: the semantic space is its principal components
ENCODER = FakeEncoder(dim=REDUCED_DIM + 64)
PAGE = make_page(title="新盘开售", text="城东楼盘开盘，首付两成，公积金房贷利率下调。")


def make_ads() -> list[Ad]:
    ads = []
    for topic, words in TOPICS.items():
        for i in range(PER_TOPIC):
            kws = tuple(words[(i + j) % len(words)] for j in range(3))
            ads.append(Ad(id=f"{topic}-{i}", campaign_id=f"cmp-{topic}", advertiser_id=f"adv-{topic}",
                          title=f"{kws[0]}{kws[1]}优惠{i}", keywords=kws, bid_fen=100))
    return ads


def page_terms(m: Matcher) -> object:
    return dataclasses.replace(m.analyze(PAGE), vector=ENCODER.encode(["城东楼盘开盘 首付两成"])[0])


@pytest.fixture(scope="module")
def ads() -> list[Ad]:
    return make_ads()


@pytest.fixture(scope="module")
def raw(ads: list[Ad]) -> np.ndarray:
    return encode_texts([ad_text(a) for a in ads], ENCODER)


@pytest.fixture(scope="module")
def catalog(ads: list[Ad], raw: np.ndarray) -> PreparedCatalog:
    return builder.build(ads, approx_min_ads=APPROX_MIN_ADS, semantic=(ENCODER, raw))


def version_dir(root: Path, m: artifact.Manifest) -> Path:
    return root / "versions" / m.version


# --- artifacts -------------------------------------------------------------------------------

def test_a_catalog_built_with_an_encoder_keeps_int8_rows_in_its_principal_components(
        catalog: PreparedCatalog, raw: np.ndarray) -> None:
    """A catalog past approx_min_ads stores each ad as the int8 image of its encoder vector projected
    into the catalog's principal components, named after its encoder."""
    space, rows = catalog.semantic, catalog.ad_semantic
    assert space is not None and rows is not None and catalog.ad_semantic_norms is not None
    assert space.encoder == ENCODER.name and space.basis is not None and space.dim == REDUCED_DIM
    assert rows.dtype == np.int8 and rows.shape == (len(catalog.ads), REDUCED_DIM)
    np.testing.assert_array_equal(rows, quantize(space.project(raw)))
    np.testing.assert_allclose(catalog.ad_semantic_norms, np.linalg.norm(rows.astype(np.float32), axis=1))


def test_an_artifact_round_trip_keeps_the_semantic_rows_space_and_manifest(catalog: PreparedCatalog,
                                                                          tmp_path: Path) -> None:
    """A saved and reloaded catalog has the same semantic rows, space and baseline, ranks an analysed
    page the same, and its manifest names the encoder, the dimension and the kind of space."""
    m = artifact.save(catalog, tmp_path)
    vdir = version_dir(tmp_path, m)
    manifest = json.loads((vdir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["semantic"] == {"encoder": ENCODER.name, "dim": REDUCED_DIM,
                                    "space": "catalog principal components"}
    assert "semantic.npz" in manifest["files"]
    with np.load(vdir / "semantic.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
    m2, back = artifact.load(tmp_path)
    assert m2.semantic == m.semantic
    assert back.semantic is not None and back.ad_semantic is not None and catalog.semantic is not None
    np.testing.assert_array_equal(back.ad_semantic, catalog.ad_semantic)
    assert back.semantic.basis is not None and catalog.semantic.basis is not None
    np.testing.assert_array_equal(back.semantic.basis, catalog.semantic.basis)
    np.testing.assert_array_equal(back.semantic.mean, catalog.semantic.mean)
    assert (back.semantic.encoder, back.semantic.baseline) == (catalog.semantic.encoder, catalog.semantic.baseline)
    built, loaded = Matcher(catalog), Matcher(back)
    before = [(c.ad.id, round(c.score, 6), round(c.signals.semantic, 6)) for c in built.rank(page_terms(built), 10)]
    assert before and any(s > 0 for _, _, s in before)
    assert [(c.ad.id, round(c.score, 6), round(c.signals.semantic, 6))
            for c in loaded.rank(page_terms(loaded), 10)] == before


def test_a_damaged_semantic_file_is_refused_by_its_checksum(catalog: PreparedCatalog, tmp_path: Path) -> None:
    """One flipped byte in semantic.npz is caught by its checksum and the file named; so is its absence."""
    m = artifact.save(catalog, tmp_path)
    path = version_dir(tmp_path, m) / "semantic.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(artifact.ArtifactError, match=r"semantic\.npz.*checksum.*rebuild"):
        artifact.load(tmp_path)
    path.unlink()
    with pytest.raises(artifact.ArtifactError, match=r"lacks semantic\.npz"):
        artifact.load(tmp_path)


def test_semantic_rows_that_do_not_fit_the_ad_table_are_refused(catalog: PreparedCatalog, tmp_path: Path) -> None:
    """A semantic.npz with a row missing is refused as inconsistent even when its checksum was updated to match."""
    m = artifact.save(catalog, tmp_path)
    vdir = version_dir(tmp_path, m)
    with np.load(vdir / "semantic.npz", allow_pickle=False) as z:
        state = {k: z[k] for k in z.files}
    state["ad_semantic"] = state["ad_semantic"][:-1]
    np.savez(vdir / "semantic.npz", **state)
    manifest = json.loads((vdir / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"]["semantic.npz"] = artifact._sha256(vdir / "semantic.npz")
    (vdir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(artifact.ArtifactError, match="semantic rows are.*rebuild"):
        artifact.load(tmp_path)


# --- the vector cache ------------------------------------------------------------------------

def cached_vectors(ads: list[Ad], root: Path, enc: CountingEncoder) -> np.ndarray:
    """The build's vector lookup (cache, then Redis — none here —, then the encoder)."""
    return asyncio.run(catalog_vectors(ads, root, AdVectors(None, enc)))


def test_a_second_build_of_the_same_catalog_encodes_nothing(ads: list[Ad], tmp_path: Path) -> None:
    """The first build encodes each distinct ad text once; a second build of the same ads encodes none
    and gets the same vectors (float16 precision) from the cache."""
    enc = CountingEncoder(ENCODER)
    twice = [*ads, dataclasses.replace(ads[0], id="copy-of-first")]  # the same text as another ad
    first = cached_vectors(twice, tmp_path, enc)
    assert sorted(enc.texts) == sorted({ad_text(a) for a in twice})
    enc.texts.clear()
    second = cached_vectors(twice, tmp_path, enc)
    assert enc.texts == []
    np.testing.assert_allclose(second, first, atol=2e-3)
    np.testing.assert_allclose(first, ENCODER.encode([ad_text(a) for a in twice]), atol=1e-6)


def test_only_an_ad_whose_text_changed_is_encoded_again(ads: list[Ad], tmp_path: Path) -> None:
    """After one ad's title changes, the next build encodes that ad's new text and nothing else, and the
    cache then holds exactly the current catalog's texts."""
    enc = CountingEncoder(ENCODER)
    cached_vectors(ads, tmp_path, enc)
    edited = [*ads]
    edited[7] = dataclasses.replace(ads[7], title="全新标题 限时特惠")
    enc.texts.clear()
    got = cached_vectors(edited, tmp_path, enc)
    assert enc.texts == [ad_text(edited[7])]
    np.testing.assert_allclose(got[7], ENCODER.encode([ad_text(edited[7])])[0], atol=1e-6)
    cache = VectorCache.load(tmp_path, ENCODER.name, ENCODER.dim)
    assert set(cache.keys.tolist()) == {text_key(ENCODER.name, ad_text(a)) for a in edited}


def test_a_damaged_vector_cache_is_recomputed_not_fatal(ads: list[Ad], tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """An unreadable cache file costs a full encoding and a warning, never a failed build."""
    enc = CountingEncoder(ENCODER)
    cached_vectors(ads[:5], tmp_path, enc)
    [path] = (tmp_path / "vectors").glob("*.npz")
    path.write_bytes(b"not a zip file")
    enc.texts.clear()
    with caplog.at_level(logging.WARNING, logger="index.vector_cache"):
        got = cached_vectors(ads[:5], tmp_path, enc)
    assert len(enc.texts) == 5
    np.testing.assert_allclose(got, ENCODER.encode([ad_text(a) for a in ads[:5]]), atol=1e-6)
    assert any("unreadable" in r.getMessage() for r in caplog.records)


def test_each_encoder_keeps_its_own_cache(ads: list[Ad], tmp_path: Path) -> None:
    """Vectors cached for one encoder are never served to another: its first build encodes everything."""
    cached_vectors(ads[:5], tmp_path, CountingEncoder(ENCODER))
    other = CountingEncoder(FakeEncoder(dim=ENCODER.dim, name="another-encoder/2"))
    got = cached_vectors(ads[:5], tmp_path, other)
    assert len(other.texts) == 5
    np.testing.assert_allclose(got, other.inner.encode([ad_text(a) for a in ads[:5]]), atol=1e-6)


# --- live deltas -----------------------------------------------------------------------------

def test_changed_ads_get_semantic_rows_in_the_snapshots_space(catalog: PreparedCatalog, ads: list[Ad]) -> None:
    """Ads changed since the build are projected into the snapshot's own space: an unchanged ad replayed
    through the delta gets exactly its snapshot row and semantic signal, an edited one the projection of
    its new vector."""
    edited = dataclasses.replace(ads[3], id="edited", title="学区房公积金贷款", keywords=("学区房", "公积金"))
    same = ads[13]
    changed = [edited, same]
    vectors = ENCODER.encode([ad_text(a) for a in changed])
    delta = delta_catalog(catalog, changed, vectors)
    assert catalog.semantic is not None and catalog.ad_semantic is not None and delta.ad_semantic is not None
    assert delta.semantic is catalog.semantic
    np.testing.assert_array_equal(delta.ad_semantic, quantize(catalog.semantic.project(vectors)))
    np.testing.assert_array_equal(delta.ad_semantic[1], catalog.ad_semantic[13])
    base = Matcher(catalog)
    live = LiveMatcher(base, Matcher(delta, base.config, base.classifier), frozenset({"edited", same.id}))
    terms = page_terms(base)
    in_live = {c.ad.id: c.signals.semantic for c in live.rank(terms, 60)}
    in_base = {c.ad.id: c.signals.semantic for c in base.rank(terms, 60)}
    assert same.id in in_live and in_live[same.id] == pytest.approx(in_base[same.id], abs=1e-6)


def test_a_delta_has_no_semantic_rows_without_vectors_or_without_a_space(catalog: PreparedCatalog,
                                                                         ads: list[Ad]) -> None:
    """Changed ads get semantic rows only when both the snapshot has a space and their vectors are given."""
    vectors = ENCODER.encode([ad_text(ads[0])])
    assert delta_catalog(catalog, ads[:1], None).ad_semantic is None
    lexical = dataclasses.replace(catalog, semantic=None, ad_semantic=None, ad_semantic_norms=None)
    d = delta_catalog(lexical, ads[:1], vectors)
    assert d.semantic is None and d.ad_semantic is None
    empty = delta_catalog(catalog, [], np.zeros((0, ENCODER.dim), dtype=np.float32))
    assert empty.ad_semantic is not None and empty.ad_semantic.shape == (0, REDUCED_DIM)


# --- neighbours of large catalogs ------------------------------------------------------------

def test_a_large_catalogs_semantic_neighbours_are_mostly_the_exact_ones() -> None:
    """Past EXHAUSTIVE_MAX_ADS ads the semantic graph is searched by IVF; on a catalog of topics its
    neighbours are at least 90% of the exact nearest ones (numpy brute force on a sample is the oracle),
    and each row still sums to one with the ad itself in it."""
    rng = np.random.default_rng(7)
    n, d, topics = EXHAUSTIVE_MAX_ADS + 1, REDUCED_DIM, 400
    centres = unit_rows(rng.standard_normal((topics, d)))
    stored = quantize(unit_rows(centres[rng.integers(0, topics, n)] + 0.12 * rng.standard_normal((n, d))))
    g = semantic_graph(stored)
    assert g.shape == (n, n)
    np.testing.assert_allclose(np.asarray(g.sum(axis=1)).ravel(), 1.0, atol=1e-5)
    assert (g.diagonal() > 0).all()
    unit = stored.astype(np.float32) / np.linalg.norm(stored.astype(np.float32), axis=1, keepdims=True)
    sample = rng.choice(n, 300, replace=False)
    sims = unit[sample] @ unit.T
    sims[np.arange(len(sample)), sample] = -np.inf
    recall = []
    for j, i in enumerate(sample):
        exact = set(np.argsort(-sims[j])[:NEIGHBOURS].tolist())
        found = set(g.indices[g.indptr[i]:g.indptr[i + 1]].tolist()) - {int(i)}
        assert len(found) <= NEIGHBOURS
        recall.append(len(exact & found) / NEIGHBOURS)
    assert float(np.mean(recall)) >= 0.9
