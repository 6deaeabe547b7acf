"""Index building and versioned artifacts (index.builder, index.artifact) against oracles."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import faiss
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from index import artifact, builder
from matching import text
from matching.analyze import make_page
from matching.matcher import MatchConfig, Matcher, PreparedCatalog, VectorSearch
from matching.types import Ad
from service.serving.index_holder import IndexHolder

FILES = ("ads.jsonl", "vectorizer.npz", "ad_matrix.npz", "dense.faiss")
DENSE_DIM = 16

TOPICS = {
    "telecom": ["手机套餐", "流量", "话费", "漫游", "长话", "市话", "宽带", "携号转网"],
    "realty": ["楼盘", "首付", "房贷", "公积金", "户型", "学区房", "二手房", "租房"],
    "auto": ["新能源汽车", "续航", "充电桩", "SUV", "试驾", "二手车", "保养", "车险"],
    "travel": ["旅游", "机票", "酒店", "签证", "海岛", "自驾游", "跟团游", "景区"],
    "baby": ["奶粉", "纸尿裤", "孕妇", "早教", "宝宝", "辅食", "婴儿车", "母婴"],
}
PAGES = [
    ("3G手机资费", "运营商推出手机套餐，长话、市话、漫游一个价，流量更多。"),
    ("新盘开售", "城东楼盘开盘，首付两成，公积金房贷利率下调，三居户型受欢迎。"),
    ("续航焦虑缓解", "新能源汽车续航提升，小区充电桩越来越多，试驾预约火爆。"),
    ("暑期出游", "海岛旅游升温，机票酒店价格上涨，自驾游线路受青睐。"),
    ("新手爸妈", "如何给宝宝挑选奶粉和纸尿裤，辅食添加有讲究。"),
]


def make_ads() -> list[Ad]:
    """Twenty-five ads over five topics; each takes a rotating slice of its topic's keywords."""
    ads = []
    for t, (topic, words) in enumerate(TOPICS.items()):
        for i in range(5):
            kws = tuple(words[(i + j) % len(words)] for j in range(3 + i % 3))
            ads.append(Ad(id=f"ad-{topic}-{i}", campaign_id=f"cmp-{topic}", advertiser_id=f"adv-{t}",
                          title=f"{kws[0]}{kws[1]}优惠", keywords=kws, bid_fen=100 + 10 * i,
                          description="、".join(kws) + "，限时活动", landing_url=f"https://example.com/{topic}/{i}",
                          keyword_bids=((kws[0], 150 + i),), negative_keywords=("招聘",) if i == 0 else ()))
    return ads


@pytest.fixture(scope="module")
def catalog() -> PreparedCatalog:
    return builder.build(make_ads(), dense_dim=DENSE_DIM)


@pytest.fixture(scope="module")
def saved_once(catalog: PreparedCatalog, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, artifact.Manifest]:
    root = tmp_path_factory.mktemp("index")
    return root, artifact.save(catalog, root)


@pytest.fixture(scope="module")
def loaded(saved_once: tuple[Path, artifact.Manifest]) -> tuple[artifact.Manifest, PreparedCatalog]:
    return artifact.load(saved_once[0])


@pytest.fixture
def saved(catalog: PreparedCatalog, tmp_path: Path) -> tuple[Path, Path]:
    """A fresh artifact in this test's own directory: (root, version directory)."""
    m = artifact.save(catalog, tmp_path)
    return tmp_path, tmp_path / "versions" / m.version


def ranking(catalog: PreparedCatalog) -> list[list[tuple[str, float, tuple[str, ...]]]]:
    m = Matcher(catalog, MatchConfig())
    out = []
    for title, body in PAGES:
        cands = m.rank(m.analyze(make_page(title=title, text=body)), 5)
        out.append([(c.ad.id, c.score, c.matched_keywords) for c in cands])
    return out


def oracle_scores(ad_dense: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Inner products of every ad with ``q``, by brute force in float64."""
    return ad_dense.astype(np.float64) @ q.astype(np.float64)


def dense_of(catalog: PreparedCatalog) -> np.ndarray:
    """The float32 vectors FAISS holds, recomputed from the ads' TF-IDF rows."""
    return catalog.vectorizer.dense(sp.csr_matrix(catalog.term_ad.T))


def faiss_of(catalog: PreparedCatalog) -> faiss.Index:
    assert isinstance(catalog.dense, faiss.Index)
    return catalog.dense


def assert_top_k_matches_oracle(index: VectorSearch, ad_dense: np.ndarray, q: np.ndarray, k: int) -> None:
    sims, ids = index.search(q.reshape(1, -1).astype(np.float32), k)
    exact = oracle_scores(ad_dense, q)
    expected = np.sort(exact)[::-1][:k]
    np.testing.assert_allclose(sims[0], expected, rtol=1e-5, atol=1e-5)
    # Each returned id really has the returned score (ties may order differently, scores may not).
    np.testing.assert_allclose(exact[ids[0]], sims[0], rtol=1e-5, atol=1e-5)
    assert len(set(ids[0].tolist())) == k


# ---- build ----------------------------------------------------------------------------------------
def test_build_indexes_every_ad_in_order(catalog: PreparedCatalog) -> None:
    """Row i of every structure, and FAISS id i, describe ads[i]."""
    ads = make_ads()
    assert [a.id for a in catalog.ads] == [a.id for a in ads]
    assert catalog.dense.ntotal == len(ads)
    assert catalog.ad_dense.shape == (len(ads), catalog.vectorizer.dim)
    assert catalog.term_ad.shape == (len(catalog.vectorizer.vocabulary), len(ads))
    stored = np.vstack([faiss_of(catalog).reconstruct(i) for i in range(len(ads))])
    np.testing.assert_array_equal(stored, dense_of(catalog))


def test_dense_vectors_are_unit_length(catalog: PreparedCatalog) -> None:
    """Every ad's dense vector has length 1, so inner product is cosine similarity."""
    np.testing.assert_allclose(np.linalg.norm(dense_of(catalog), axis=1), 1.0, rtol=1e-5)


def test_candidates_half_precision_vectors_give_cosines_within_a_thousandth(catalog: PreparedCatalog) -> None:
    """The float16 copy read for candidates' cosines (half the memory) is within 0.001 of float32."""
    assert catalog.ad_dense.dtype == np.float16
    exact = dense_of(catalog)
    rng = np.random.default_rng(3)
    for _ in range(20):
        q = rng.normal(size=exact.shape[1]).astype(np.float32)
        q /= np.linalg.norm(q)
        np.testing.assert_allclose(catalog.ad_dense.astype(np.float32) @ q, exact @ q, atol=1e-3)


def test_build_is_deterministic(catalog: PreparedCatalog) -> None:
    """Building the same ads twice gives identical vectors, FAISS bytes and rankings."""
    again = builder.build(make_ads(), dense_dim=DENSE_DIM)
    assert again.vectorizer.vocabulary == catalog.vectorizer.vocabulary
    np.testing.assert_array_equal(again.vectorizer.idf, catalog.vectorizer.idf)
    np.testing.assert_array_equal(again.vectorizer.components, catalog.vectorizer.components)
    np.testing.assert_array_equal(again.ad_dense, catalog.ad_dense)
    assert (again.term_ad != catalog.term_ad).nnz == 0
    assert bytes(faiss.serialize_index(faiss_of(again))) == bytes(faiss.serialize_index(faiss_of(catalog)))
    assert ranking(again) == ranking(catalog)


def test_keywords_become_user_words(catalog: PreparedCatalog) -> None:
    """Every advertiser keyword is in the tokenizer's user dictionary, normalised."""
    assert {"新能源汽车", "携号转网", "suv"} <= catalog.tokenizer.user_words


def test_empty_catalog_builds_an_empty_index() -> None:
    """A catalog without ads builds an index that holds no ads."""
    empty = builder.build([], dense_dim=DENSE_DIM)
    assert len(empty.ads) == 0 and empty.dense.ntotal == 0


# ---- FAISS against a brute-force oracle -----------------------------------------------------------
def test_faiss_top_k_equals_numpy_brute_force(catalog: PreparedCatalog) -> None:
    """For random queries FAISS returns the same top-k scores and ads as numpy inner products."""
    rng = np.random.default_rng(42)
    n = len(catalog.ads)
    for _ in range(50):
        q = rng.normal(size=catalog.vectorizer.dim).astype(np.float32)
        q /= np.linalg.norm(q)
        assert_top_k_matches_oracle(catalog.dense, dense_of(catalog), q, int(rng.integers(1, n + 1)))


def test_faiss_top_k_for_page_queries_equals_brute_force(catalog: PreparedCatalog) -> None:
    """For the dense vectors of real pages FAISS agrees with the numpy oracle."""
    m = Matcher(catalog)
    for title, body in PAGES:
        q = catalog.vectorizer.dense(catalog.vectorizer.sparse([m.analyze(make_page(title=title, text=body)).counts]))
        assert_top_k_matches_oracle(catalog.dense, dense_of(catalog), q[0], 10)


@settings(max_examples=40, deadline=None)
@given(vec=st.lists(st.floats(-1, 1, allow_nan=False, width=32), min_size=DENSE_DIM, max_size=DENSE_DIM),
       k=st.integers(1, 25))
def test_loaded_faiss_top_k_equals_brute_force(loaded: tuple[artifact.Manifest, PreparedCatalog],
                                               vec: list[float], k: int) -> None:
    """Any query against the FAISS index read from disk ranks like the brute-force oracle."""
    _, cat = loaded
    q = np.asarray(vec, dtype=np.float32)
    assert_top_k_matches_oracle(cat.dense, dense_of(cat), q, min(k, len(cat.ads)))


# ---- save / load ----------------------------------------------------------------------------------
def test_round_trip_gives_identical_vectors(catalog: PreparedCatalog,
                                            loaded: tuple[artifact.Manifest, PreparedCatalog]) -> None:
    """Loading a saved artifact gives back the same ads, vocabulary, IDF, components and vectors."""
    _, back = loaded
    assert list(back.ads) == list(catalog.ads)
    assert back.vectorizer.vocabulary == catalog.vectorizer.vocabulary
    np.testing.assert_array_equal(back.vectorizer.idf, catalog.vectorizer.idf)
    np.testing.assert_array_equal(back.vectorizer.components, catalog.vectorizer.components)
    np.testing.assert_array_equal(back.ad_dense, catalog.ad_dense)
    assert (back.term_ad != catalog.term_ad).nnz == 0
    assert list(back.ad_keywords) == list(catalog.ad_keywords)
    assert list(back.ad_negatives) == list(catalog.ad_negatives)
    assert back.tokenizer.user_words == catalog.tokenizer.user_words


def test_round_trip_gives_identical_rankings(catalog: PreparedCatalog,
                                             loaded: tuple[artifact.Manifest, PreparedCatalog]) -> None:
    """A loaded index ranks every test page exactly like the index it was saved from."""
    before = ranking(catalog)
    assert any(before), "the test pages should match something"
    assert ranking(loaded[1]) == before


def test_manifest_describes_the_artifact(saved_once: tuple[Path, artifact.Manifest],
                                         catalog: PreparedCatalog) -> None:
    """The manifest records format, counts, dimensions, tokenizer settings, libraries and checksums."""
    root, m = saved_once
    on_disk = json.loads((root / "versions" / m.version / "manifest.json").read_text(encoding="utf-8"))
    assert on_disk["format_version"] == artifact.FORMAT_VERSION
    assert on_disk["ad_count"] == len(catalog.ads)
    assert on_disk["dense_dim"] == catalog.vectorizer.dim
    assert on_disk["vocabulary_size"] == len(catalog.vectorizer.vocabulary)
    assert on_disk["tokenizer"]["opencc"] == text.CONVERSION
    assert {"faiss-cpu", "numpy", "jieba", "opencc", "scikit-learn"} <= set(on_disk["libraries"])
    assert set(on_disk["files"]) == set(FILES)


def test_artifact_holds_no_pickles(saved: tuple[Path, Path]) -> None:
    """Every array file loads with allow_pickle=False."""
    _, vdir = saved
    for name in ("vectorizer.npz", "ad_matrix.npz"):
        with np.load(vdir / name, allow_pickle=False) as z:
            for key in z.files:
                assert z[key].dtype != object


# ---- refusing bad artifacts -----------------------------------------------------------------------
def test_no_index_built_is_refused(tmp_path: Path) -> None:
    """Loading from a root where nothing was built says to run the build."""
    with pytest.raises(artifact.ArtifactError, match="no index has been built.*index build"):
        artifact.load(tmp_path)


def test_wrong_format_version_is_refused(saved: tuple[Path, Path]) -> None:
    """A manifest of another format version is refused with both versions and the fix named."""
    root, vdir = saved
    manifest = json.loads((vdir / "manifest.json").read_text(encoding="utf-8"))
    manifest["format_version"] = artifact.FORMAT_VERSION + 98
    (vdir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(artifact.ArtifactError) as e:
        artifact.load(root)
    msg = str(e.value)
    assert f"format {artifact.FORMAT_VERSION + 98}" in msg and f"format {artifact.FORMAT_VERSION}" in msg
    assert "rebuild" in msg


def test_manifest_missing_fields_is_refused(saved: tuple[Path, Path]) -> None:
    """A manifest lacking fields is refused and the missing fields are named."""
    root, vdir = saved
    manifest = json.loads((vdir / "manifest.json").read_text(encoding="utf-8"))
    del manifest["files"]
    (vdir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(artifact.ArtifactError, match="lacks.*files.*rebuild"):
        artifact.load(root)


def test_manifest_not_json_is_refused(saved: tuple[Path, Path]) -> None:
    """A manifest that is not JSON is refused rather than crashing the loader."""
    root, vdir = saved
    (vdir / "manifest.json").write_bytes(b"\xff{ not json")
    with pytest.raises(artifact.ArtifactError, match="not valid JSON.*rebuild"):
        artifact.load(root)


@pytest.mark.parametrize("name", FILES)
def test_flipped_byte_is_refused_by_checksum(saved: tuple[Path, Path], name: str) -> None:
    """A single flipped byte in any artifact file is caught by its checksum and the file named."""
    root, vdir = saved
    data = bytearray((vdir / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (vdir / name).write_bytes(bytes(data))
    with pytest.raises(artifact.ArtifactError, match=rf"{name}.*checksum.*rebuild"):
        artifact.load(root)


@pytest.mark.parametrize("name", FILES + ("manifest.json",))
def test_missing_file_is_refused(saved: tuple[Path, Path], name: str) -> None:
    """An artifact missing any of its files is refused and the file named."""
    root, vdir = saved
    (vdir / name).unlink()
    with pytest.raises(artifact.ArtifactError, match=rf"{name}.*rebuild|lacks {name}"):
        artifact.load(root)


def test_current_naming_a_missing_version_is_refused(saved: tuple[Path, Path]) -> None:
    """CURRENT pointing at a version that does not exist is refused, naming that version."""
    root, _ = saved
    (root / "CURRENT").write_text("20990101T000000000000Z-dead\n", encoding="utf-8")
    with pytest.raises(artifact.ArtifactError, match="20990101T000000000000Z-dead"):
        artifact.load(root)


def test_inconsistent_ad_table_is_refused(saved: tuple[Path, Path]) -> None:
    """An ad table shorter than the manifest says is refused even when its checksum was updated."""
    root, vdir = saved
    lines = (vdir / "ads.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (vdir / "ads.jsonl").write_text("".join(lines[:-1]), encoding="utf-8")
    manifest = json.loads((vdir / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"]["ads.jsonl"] = artifact._sha256(vdir / "ads.jsonl")
    (vdir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(artifact.ArtifactError, match="inconsistent.*ads"):
        artifact.load(root)


# ---- publishing -----------------------------------------------------------------------------------
def test_current_is_published_after_the_version_is_complete(
        catalog: PreparedCatalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CURRENT is switched by an atomic rename, and only once its version directory is complete."""
    real_replace = os.replace
    seen: list[tuple[str, bool]] = []

    def spy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst) == tmp_path / "CURRENT":
            version = Path(src).read_text(encoding="utf-8").strip()
            vdir = tmp_path / "versions" / version
            complete = all((vdir / n).is_file() for n in FILES + ("manifest.json",))
            seen.append((version, complete and artifact.read_manifest(tmp_path, version).version == version))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    first = artifact.save(catalog, tmp_path)
    second = artifact.save(catalog, tmp_path)
    assert seen == [(first.version, True), (second.version, True)]
    assert artifact.current_version(tmp_path) == second.version


def test_save_leaves_no_temporary_files(saved: tuple[Path, Path]) -> None:
    """After a save only CURRENT and finished version directories remain."""
    root, vdir = saved
    assert sorted(p.name for p in root.iterdir()) == ["CURRENT", "versions"]
    assert [p.name for p in (root / "versions").iterdir()] == [vdir.name]


def test_new_version_leaves_old_version_loadable(catalog: PreparedCatalog, saved: tuple[Path, Path]) -> None:
    """Publishing a new version keeps the previous one intact for readers still using it."""
    root, old = saved
    new = artifact.save(catalog, root)
    assert new.version != old.name
    assert artifact.current_version(root) == new.version
    assert artifact.read_manifest(root, old.name).version == old.name


def test_holder_keeps_serving_when_a_damaged_version_is_published(saved: tuple[Path, Path],
                                                                  catalog: PreparedCatalog) -> None:
    """A damaged new version is refused with its error recorded, and the old snapshot keeps serving."""
    root, old = saved
    holder = IndexHolder(root, MatchConfig())
    assert asyncio.run(holder.refresh()) is True
    bad = artifact.save(catalog, root)
    (root / "versions" / bad.version / "dense.faiss").write_bytes(b"garbage")
    assert asyncio.run(holder.refresh()) is False
    assert holder.snapshot is not None and holder.snapshot.manifest.version == old.name
    assert holder.last_error is not None and "dense.faiss" in holder.last_error


def test_holder_loads_only_a_newer_version(saved: tuple[Path, Path], catalog: PreparedCatalog) -> None:
    """The holder keeps its snapshot when asked for the serving version or an older one, and swaps for a newer one."""
    root, first = saved
    holder = IndexHolder(root, MatchConfig())
    assert asyncio.run(holder.refresh()) is True
    serving = holder.snapshot
    assert asyncio.run(holder.refresh()) is False  # CURRENT still names the serving version
    assert asyncio.run(holder.refresh(first.name)) is False
    assert holder.snapshot is serving
    newer = artifact.save(catalog, root)
    assert asyncio.run(holder.refresh(first.name)) is False  # the serving version, a newer one published
    assert holder.snapshot is serving
    assert asyncio.run(holder.refresh()) is True
    assert holder.snapshot is not serving and holder.snapshot is not None
    assert holder.snapshot.manifest.version == newer.version
    newest = holder.snapshot
    assert asyncio.run(holder.refresh(first.name)) is False  # an older version after a newer one
    assert holder.snapshot is newest


def test_index_built_with_another_text_conversion_is_refused(tmp_path: Path) -> None:
    """An index whose manifest names another Traditional→Simplified conversion is refused on load."""
    built = builder.build([], dense_dim=DENSE_DIM)
    manifest = artifact.save(built, tmp_path)
    path = tmp_path / "versions" / manifest.version / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["tokenizer"]["opencc"] = "tw2sp"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(artifact.ArtifactError, match="rebuild the index"):
        artifact.load(tmp_path)


def test_large_catalogs_get_an_approximate_index_with_high_recall() -> None:
    """From approx_min_ads on, the dense index is IVF, and its recall@10 against exact search is ≥ 0.95."""
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(60, 32)).astype(np.float32)
    points = centres[rng.integers(0, 60, 6000)] + 0.35 * rng.normal(size=(6000, 32)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    ids = np.arange(len(points), dtype=np.int64)
    approx = builder.make_faiss(points, ids, approx_min_ads=5000)
    assert builder.describe(approx).startswith("approximate: IndexIDMap2(IndexIVFFlat")
    assert builder.describe(builder.make_faiss(points[:100], ids[:100], approx_min_ads=5000)).startswith("exact")
    queries = points[rng.choice(len(points), 200, replace=False)] + 0.1 * rng.normal(size=(200, 32)).astype(np.float32)
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    exact = np.argsort(-(queries @ points.T), axis=1)[:, :10]
    _, found = approx.search(queries, 10)
    recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact, strict=True)])
    assert recall >= 0.95, recall


def test_publishing_with_a_lower_threshold_records_and_serves_the_approximate_index(tmp_path: Path) -> None:
    """scripts/evaluate.py --dense approximate: the production build path takes the threshold,
    the manifest says IVF, and the loaded index still puts each topic's ads first."""
    from service.serving.indexing import build_and_publish

    manifest = build_and_publish(make_ads(), tmp_path, approx_min_ads=1)
    assert manifest.faiss_index.startswith("approximate: IndexIDMap2(IndexIVFFlat")
    loaded_manifest, loaded_catalog = artifact.load(tmp_path)
    assert loaded_manifest.faiss_index == manifest.faiss_index
    for (title, body), top in zip(PAGES, ranking(loaded_catalog), strict=True):
        topic = next(t for t, words in TOPICS.items() if any(w in title + body for w in words))
        assert top and top[0][0].startswith(f"ad-{topic}-"), (title, top)


@pytest.mark.parametrize("n_candidates", [3, 8, 100])
def test_sparse_evidence_matches_the_dense_oracle(catalog: PreparedCatalog, n_candidates: int) -> None:
    """The keyword and TF-IDF signals computed on candidate rows only equal those computed over
    every ad with dense arrays (the straightforward definition), and retrieval keeps the best
    TF-IDF ads."""
    from matching.signals import SIGNALS, EvidenceGatherer

    m = Matcher(catalog, MatchConfig())
    g = EvidenceGatherer(catalog, coarse_dim=4)
    for title, body in PAGES:
        terms = m.analyze(make_page(title=title, text=body))
        ev = g.gather(terms, n_candidates)
        assert ev is not None
        q = catalog.vectorizer.page([terms.counts])
        tfidf_all = (q @ catalog.term_ad).toarray().ravel()
        log_miss = np.zeros(len(catalog.ads))
        for r, kws in enumerate(catalog.ad_keywords):
            for kw in kws:
                if kw in ev.found:
                    log_miss[r] += np.log(max(1.0 - min(1.0, 2.0 * ev.salience.get(kw, 0.0)), 1e-9))
        keyword_all = 1.0 - np.exp(log_miss)
        np.testing.assert_allclose(ev.values[:, SIGNALS.index("tfidf")], np.clip(tfidf_all[ev.rows], 0, 1),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ev.values[:, SIGNALS.index("keyword")], keyword_all[ev.rows],
                                   rtol=1e-5, atol=1e-6)
        best = np.sort(tfidf_all)[::-1][:min(n_candidates, np.count_nonzero(tfidf_all))]
        assert np.all(np.isin(best, tfidf_all[ev.rows]))


@settings(max_examples=60, deadline=None)
@given(shape=st.tuples(st.integers(1, 40), st.integers(1, 30)), density=st.floats(0.0, 1.0),
       seed=st.integers(0, 2**32 - 1), picks=st.integers(0, 60))
def test_row_dots_is_scipys_row_selection_times_a_vector(shape: tuple[int, int], density: float, seed: int,
                                                         picks: int) -> None:
    """The candidate-row product equals scipy's ``m[rows] @ q`` (rows in any order, repeated,
    empty), the oracle it replaces on the hot path."""
    import scipy.sparse as sp

    from matching.vectors import row_dots

    rng = np.random.default_rng(seed)
    m = sp.random(*shape, density=density, format="csr", dtype=np.float32, random_state=rng)
    q = rng.standard_normal(shape[1])
    rows = rng.integers(0, shape[0], size=picks)
    np.testing.assert_allclose(row_dots(m, rows, q), m[rows] @ q if picks else np.zeros(0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("budget", [1, 6, 30])
def test_postings_budget_retrieves_by_the_rarest_terms_and_scores_candidates_on_all(
        catalog: PreparedCatalog, budget: int) -> None:
    """With a postings budget, retrieval by shared terms uses the page's rarest terms whose
    postings fit (at least one term), the best ``n`` of those partial scores are candidates, and
    every candidate's TF-IDF signal is still its score over all of the page's terms."""
    from matching.signals import SIGNALS, EvidenceGatherer

    m = Matcher(catalog, MatchConfig())
    g = EvidenceGatherer(catalog, coarse_dim=4)
    df = np.diff(catalog.term_ad.indptr)
    n = 3
    for title, body in PAGES:
        terms = m.analyze(make_page(title=title, text=body))
        q = catalog.vectorizer.page([terms.counts])
        if q.nnz == 0:
            continue
        order = sorted(range(q.nnz), key=lambda j: (df[q.indices[j]], j))
        kept, used = [], 0
        for j in order:
            if kept and used + df[q.indices[j]] > budget:
                break
            kept.append(j)
            used += df[q.indices[j]]
        if int(df[q.indices].sum()) <= budget:
            kept = list(range(q.nnz))
        partial = np.zeros(len(catalog.ads))
        for j in kept:
            col = catalog.term_ad.getrow(q.indices[j])
            partial[col.indices] += q.data[j] * col.data
        retrieved = g._retrieve(q, n, budget)
        assert len(set(retrieved.tolist())) == len(retrieved) == min(n, np.count_nonzero(partial))
        assert np.min(partial[retrieved], initial=np.inf) >= np.sort(partial)[::-1][len(retrieved) - 1] - 1e-6
        ev = g.gather(terms, n, postings_budget=budget)
        assert ev is not None
        exact = (q @ catalog.term_ad).toarray().ravel()
        np.testing.assert_allclose(ev.values[:, SIGNALS.index("tfidf")], np.clip(exact[ev.rows], 0, 1),
                                   rtol=1e-5, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 40), density=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1), picks=st.integers(0, 40))
def test_sub_dots_is_scipys_square_sub_matrix_times_a_vector(n: int, density: float, seed: int, picks: int) -> None:
    """Neighbour support on the candidates equals scipy's ``m[rows][:, rows] @ x``."""
    import scipy.sparse as sp

    from matching.vectors import sub_dots

    rng = np.random.default_rng(seed)
    m = sp.random(n, n, density=density, format="csr", dtype=np.float32, random_state=rng)
    rows = np.unique(rng.integers(0, n, size=picks))
    x = rng.standard_normal(len(rows))
    expected = m[rows][:, rows] @ x if len(rows) else np.zeros(0)
    np.testing.assert_allclose(sub_dots(m, rows, x), expected, rtol=1e-5, atol=1e-6)
