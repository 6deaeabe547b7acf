"""The semantic signal's pure parts (matching.semantic, matching.neighbours) against properties and
numpy oracles, and the real sentence encoder on a few texts."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from matching.analyze import make_page
from matching.encoder import USE_PACKAGE, default_encoder
from matching.neighbours import exact_knn, knn_graph, mix
from matching.semantic import (
    MAX_PASSAGES,
    PASSAGE_CHARS,
    SemanticSpace,
    ad_text,
    cosines,
    page_vector,
    passages,
    pool,
    quantize,
    row_norms,
    text_key,
    text_of,
    unit_rows,
)
from matching.text import normalize
from matching.types import Ad, Page
from tests.encoders import FakeEncoder

# Han characters, sentence ends, spaces and newlines: pages of every packing case.
TEXT = st.text(alphabet="房贷利率下调城东楼盘开盘手机套餐。！？；;!?\n ", max_size=3000)
TITLE = st.text(alphabet="房贷利率楼市新政观察！？ ", max_size=300)


def squashed(s: str) -> str:
    return re.sub(r"\s", "", s)


def rows_sum_to_one(m: sp.csr_matrix) -> None:
    np.testing.assert_allclose(np.asarray(m.sum(axis=1)).ravel(), 1.0, atol=1e-5)


# --- passages --------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(TITLE, TEXT)
def test_passages_are_bounded_pieces_of_the_page_read_in_order_from_the_title(title: str, body: str) -> None:
    """A page reads as at most MAX_PASSAGES non-blank pieces of at most PASSAGE_CHARS, which
    together are the start of its title and body, in order, nothing skipped or added."""
    ps = passages(Page(title=title, body=body))
    assert len(ps) <= MAX_PASSAGES
    assert all(0 < len(p) <= PASSAGE_CHARS and p == p.strip() for p in ps)
    rest = body[len(title):] if title and body.startswith(title) else body
    whole = squashed(title + rest)
    read = "".join(squashed(p) for p in ps)
    assert whole.startswith(read)
    assert read[:len(squashed(title))] == squashed(title)[:len(read)]  # the title first
    assert bool(read) == bool(whole)
    if len(title) + 1 + len(rest) <= PASSAGE_CHARS:  # a short page is read whole, as one passage
        assert read == whole and len(ps) <= 1


@settings(max_examples=200, deadline=None)
@given(TITLE.filter(lambda t: t.strip() != ""), TEXT)
def test_a_title_repeated_as_the_bodys_first_line_is_read_once(title: str, body: str) -> None:
    """An article that opens its body with its title reads exactly as one that does not."""
    assume(not body.startswith(title))
    assert passages(Page(title=title, body=title + body)) == passages(Page(title=title, body=body))


def test_a_long_article_reads_as_its_first_passages_only() -> None:
    """An article far longer than MAX_PASSAGES × PASSAGE_CHARS reads as exactly MAX_PASSAGES full-ish
    passages, the first opening with the title."""
    page = make_page(title="楼市观察", text="城东楼盘集中开盘，首付两成，房贷利率下调。" * 500)
    ps = passages(page)
    assert len(ps) == MAX_PASSAGES
    assert ps[0].startswith("楼市观察")
    assert all(PASSAGE_CHARS - 25 <= len(p) <= PASSAGE_CHARS for p in ps)


def test_an_empty_or_blank_page_has_no_passages() -> None:
    """A page with no text, or only whitespace, has no passages and a zero vector."""
    assert passages(Page(title="", body="")) == []
    assert passages(Page(title=" ", body="\n \n")) == []
    enc = FakeEncoder(dim=8)
    assert not page_vector(Page(title="", body=""), enc).any()
    assert page_vector(Page(title="", body=""), enc).shape == (8,)


# --- pooling and ad texts --------------------------------------------------------------------

@given(st.lists(st.floats(-10, 10, allow_nan=False), min_size=2, max_size=64))
def test_the_pool_of_one_vector_is_that_vector_normalised(values: list[float]) -> None:
    """Pooling a single passage vector gives it back at unit length."""
    v = np.array(values, dtype=np.float32)
    assume(np.linalg.norm(v) > 1e-3)
    np.testing.assert_allclose(pool(v[None, :]), v / np.linalg.norm(v), atol=1e-6)


def test_the_pool_of_several_vectors_is_their_unit_mean_and_of_none_zeros() -> None:
    """Passage vectors pool to the direction of their mean at unit length; no passages pool to zeros."""
    m = np.random.default_rng(0).standard_normal((5, 16)).astype(np.float32)
    mean = m.mean(axis=0)
    np.testing.assert_allclose(pool(m), mean / np.linalg.norm(mean), atol=1e-6)
    assert pool(np.zeros((0, 16), dtype=np.float32)).shape == (16,)
    assert not pool(np.zeros((0, 16), dtype=np.float32)).any()


def test_an_ad_reads_as_its_title_then_the_keywords_the_title_does_not_say() -> None:
    """Keywords the title already contains are dropped, repeats read once, the rest in the advertiser's order."""
    assert text_of("学区房新盘开售", ["学区房", "首付", "楼盘", "首付", "新盘", "房贷"]) == "学区房新盘开售 首付 楼盘 房贷"
    assert text_of("", ["楼盘", "首付", "楼盘"]) == "楼盘 首付"
    assert text_of("楼盘", []) == "楼盘"
    ad = Ad(id="a", campaign_id="c", advertiser_id="v", title="学区房新盘", keywords=("学区房", "首付"), bid_fen=1)
    assert ad_text(ad) == text_of(ad.title, ad.keywords) == "学区房新盘 首付"


def test_traditional_and_full_width_keywords_meet_a_simplified_title() -> None:
    """Keywords and titles are normalised alike (Traditional → Simplified, full-width → ASCII, lower case)
    before they are compared, so a keyword the title says in another script is not read twice."""
    assert text_of("学区房新盘ＳＵＶ", ["學區房", "suv", "ＳＵＶ", "首付"]) == "学区房新盘suv 首付"
    assert text_of("學區房新盤", ["学区房", "首付款"]) == "学区房新盘 首付款"
    assert text_of("學區房新盤", ["首付"]) == text_of("学区房新盘", ["首付"])


@given(TITLE.filter(lambda t: t.strip() != ""), st.lists(st.tuples(st.integers(0, 300), st.integers(1, 8)), max_size=8))
def test_keywords_cut_from_the_title_add_nothing(title: str, cuts: list[tuple[int, int]]) -> None:
    """However many keywords repeat parts of the title, the ad reads as its title alone."""
    norm = normalize(title)
    keywords = [norm[a:a + n] for a, n in cuts]
    assert text_of(title, keywords) == norm


def test_text_keys_name_the_encoder_and_the_text() -> None:
    """An ad text's cache key is a 32-character hex digest that changes with the text and with the encoder."""
    k = text_key("enc/1", "学区房新盘 首付")
    assert re.fullmatch(r"[0-9a-f]{32}", k)
    assert k == text_key("enc/1", "学区房新盘 首付")
    assert k != text_key("enc/2", "学区房新盘 首付")
    assert k != text_key("enc/1", "学区房新盘 房贷")


# --- the semantic space ----------------------------------------------------------------------

def catalog_rows(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Unit rows with a few strong directions (as ads of a few topics are), so the principal
    components are well separated."""
    rng = np.random.default_rng(seed)
    scales = np.geomspace(4.0, 0.05, d)
    return unit_rows(rng.standard_normal((n, d)) * scales + 0.3)


def test_a_small_catalog_keeps_the_encoders_space() -> None:
    """Under approx_min_ads ads the space is the encoder's own: projecting only normalises."""
    enc = FakeEncoder(dim=48)
    raw = catalog_rows(50, 48)
    space = SemanticSpace.fit(enc, raw, approx_min_ads=100, dim=8)
    assert space.basis is None and space.dim == 48 and space.encoder == enc.name
    np.testing.assert_allclose(space.project(raw), raw, atol=1e-6)


def test_a_large_catalog_gets_its_leading_principal_components() -> None:
    """From approx_min_ads ads the space is spanned by the catalog's top principal components
    (numpy's SVD of the centred rows is the oracle), with an orthonormal basis, fitted the same
    way every time."""
    enc = FakeEncoder(dim=48)
    raw = catalog_rows(400, 48)
    space = SemanticSpace.fit(enc, raw, approx_min_ads=100, dim=8)
    again = SemanticSpace.fit(enc, raw, approx_min_ads=100, dim=8)
    assert space.basis is not None and again.basis is not None
    assert space.basis.shape == (48, 8) and space.dim == 8
    np.testing.assert_allclose(space.basis.T @ space.basis, np.eye(8), atol=1e-5)
    _, _, vt = np.linalg.svd(raw - raw.mean(axis=0), full_matrices=False)
    top = vt[:8].T
    np.testing.assert_allclose(space.basis @ space.basis.T, top @ top.T, atol=1e-4)
    np.testing.assert_allclose(space.mean, raw.mean(axis=0), atol=1e-6)
    np.testing.assert_array_equal(space.basis, again.basis)
    assert space.baseline == again.baseline


@pytest.fixture(scope="module")
def reduced_space() -> SemanticSpace:
    return SemanticSpace.fit(FakeEncoder(dim=48), catalog_rows(400, 48), approx_min_ads=100, dim=8)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 30), st.integers(0, 2**32 - 1))
def test_projected_rows_are_unit_rows_of_the_spaces_dimension(reduced_space: SemanticSpace, n: int, seed: int) -> None:
    """Any encoder rows, or one vector, project to float32 unit rows of the space's dimension."""
    space = reduced_space
    rows = unit_rows(np.random.default_rng(seed).standard_normal((n, 48)))
    out = space.project(rows)
    assert out.shape == (n, 8) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(space.project(rows[0]), out[:1], atol=1e-6)


@pytest.mark.parametrize("reduced", [True, False], ids=["principal components", "encoder space"])
def test_a_space_survives_its_saved_state(reduced: bool, reduced_space: SemanticSpace) -> None:
    """A space written with np.savez (no pickles) and read back projects exactly as before."""
    space = reduced_space if reduced else SemanticSpace.fit(FakeEncoder(dim=48), catalog_rows(50, 48), approx_min_ads=100)
    buf = io.BytesIO()
    np.savez(buf, **space.state())
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as z:
        back = SemanticSpace.from_state({k: z[k] for k in z.files})
    assert (back.encoder, back.baseline, back.dim) == (space.encoder, space.baseline, space.dim)
    rows = catalog_rows(5, 48, seed=1)
    np.testing.assert_array_equal(back.project(rows), space.project(rows))


@given(st.floats(-0.5, 0.9), st.lists(st.floats(-1, 1), min_size=1, max_size=50))
def test_the_signal_runs_from_zero_at_the_baseline_to_one_at_identity(baseline: float, cos: list[float]) -> None:
    """Cosines at or under the baseline give 0, a cosine of 1 gives 1, and between them the signal
    rises with the cosine, always within [0, 1]."""
    space = SemanticSpace("e", np.zeros(4, dtype=np.float32), None, baseline)
    c = np.sort(np.array(cos))
    s = space.signal(c)
    assert ((s >= 0) & (s <= 1)).all()
    assert (np.diff(s) >= -1e-12).all()
    assert (s[c <= baseline] == 0).all()
    assert space.signal(np.array([baseline]))[0] == pytest.approx(0.0, abs=1e-9)
    assert space.signal(np.array([1.0]))[0] == pytest.approx(1.0)


# --- int8 rows -------------------------------------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(st.integers(1, 40), st.integers(4, 512), st.integers(0, 2**32 - 1))
def test_int8_rows_give_cosines_within_a_hundredth_of_float_ones(n: int, d: int, seed: int) -> None:
    """Stored int8 ad rows score a page within 0.01 of the float cosine (numpy is the oracle), for
    any selection of rows in any order."""
    rng = np.random.default_rng(seed)
    ads = unit_rows(rng.standard_normal((n, d)))
    page = unit_rows(rng.standard_normal((1, d)))[0]
    stored = quantize(ads)
    assert stored.dtype == np.int8 and np.abs(stored.astype(np.int16)).max() <= 127
    rows = rng.permutation(n)[: max(1, n // 2)]
    got = cosines(rows, stored, row_norms(stored), page)
    np.testing.assert_allclose(got, ads[rows] @ page, atol=0.01)
    assert (np.abs(got) <= 1.0 + 1e-6).all()


def test_an_empty_catalog_has_no_row_norms() -> None:
    """No stored rows, no norms (an empty catalog still builds)."""
    assert row_norms(np.zeros((0, 8), dtype=np.int8)).shape == (0,)


# --- neighbourhood graphs --------------------------------------------------------------------

@st.composite
def knn_lists(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 25))
    k = draw(st.integers(1, 6))
    ids = np.array(draw(st.lists(st.lists(st.integers(-1, n - 1), min_size=k, max_size=k), min_size=n, max_size=n)))
    sims = np.array(draw(st.lists(st.lists(st.floats(-1, 1), min_size=k, max_size=k), min_size=n, max_size=n)),
                    dtype=np.float32)
    return sims, ids


@settings(max_examples=150, deadline=None)
@given(knn_lists())
def test_a_knn_graph_is_row_stochastic_with_each_ad_in_its_own_neighbourhood(lists: tuple[np.ndarray, np.ndarray]) -> None:
    """Each row sums to one, weighs the ad itself, and weighs only neighbours of positive cosine."""
    sims, ids = lists
    g = knn_graph(sims, ids)
    n = len(ids)
    assert g.shape == (n, n)
    rows_sum_to_one(g)
    assert (g.data >= 0).all()
    assert (g.diagonal() > 0).all()
    dense = g.toarray()
    for i in range(n):
        allowed = {i} | {int(j) for j, s in zip(ids[i], sims[i], strict=True) if j >= 0 and s > 0}
        assert set(np.flatnonzero(dense[i])) <= allowed


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.integers(2, 16), st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_exact_knn_finds_numpys_brute_force_neighbours(n: int, d: int, k: int, seed: int) -> None:
    """Each row's k + 1 nearest rows by inner product (itself among them) are numpy's brute-force
    top k + 1, across the blocks the search works in; missing places are −1. Compared by their
    similarities: rows tied within float32 precision may come in either order."""
    unit = unit_rows(np.random.default_rng(seed).standard_normal((n, d)))
    sims, ids = exact_knn(unit, k)
    assert sims.shape == ids.shape == (n, k + 1)
    width = min(k + 1, n)
    full = unit @ unit.T
    for i in range(n):
        top = np.sort(full[i])[::-1][:width]
        assert len(set(ids[i, :width].tolist())) == width and (ids[i, :width] >= 0).all()
        np.testing.assert_allclose(np.sort(full[i, ids[i, :width]])[::-1], top, atol=1e-5)
        assert i in ids[i, :width] or top[-1] >= full[i, i] - 1e-5  # itself, unless others tie with it
        np.testing.assert_allclose(sims[i, :width], full[i, ids[i, :width]], atol=1e-5)
        assert (ids[i, width:] == -1).all() and np.isneginf(sims[i, width:]).all()


@settings(max_examples=50, deadline=None)
@given(knn_lists(), knn_lists(), st.floats(0, 1))
def test_mixing_two_graphs_keeps_rows_summing_to_one(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray],
                                                      share: float) -> None:
    """The lexical and semantic graphs mix, in any share, into a graph whose rows sum to one."""
    n = min(len(a[1]), len(b[1]))
    g1 = knn_graph(a[0][:n], np.where(a[1][:n] < n, a[1][:n], -1))
    g2 = knn_graph(b[0][:n], np.where(b[1][:n] < n, b[1][:n], -1))
    m = mix(g1, g2, share)
    rows_sum_to_one(m)
    assert (m.diagonal() > 0).all()


# --- the real encoder ------------------------------------------------------------------------

def test_the_encoder_puts_a_paraphrase_nearer_than_an_unrelated_sentence() -> None:
    """USE places a Chinese sentence nearer its paraphrase than a sentence about something else."""
    enc = default_encoder()
    v = enc.encode(["银行下调了房贷利率，买房的人可以少付利息", "贷款买房的利息变低了", "球队在主场赢得了比赛"])
    assert v.shape == (3, enc.dim) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3


def test_traditional_and_simplified_pages_get_one_vector() -> None:
    """A page in Traditional characters and the same page in Simplified ones get the same vector,
    as do an ad written either way."""
    enc = default_encoder()
    trad = make_page(title="樓市新政", text="銀行下調了房貸利率，買房的人可以少付利息。")
    simp = make_page(title="楼市新政", text="银行下调了房贷利率，买房的人可以少付利息。")
    np.testing.assert_allclose(page_vector(trad, enc), page_vector(simp, enc), atol=1e-6)
    assert text_of("學區房新盤", ["首付", "房貸"]) == text_of("学区房新盘", ["首付", "房贷"])
    assert normalize("銀行下調了房貸利率") == "银行下调了房贷利率"


def test_the_encoder_names_its_package_version_and_encodes_nothing_to_an_empty_matrix() -> None:
    """The encoder's name carries the wheel's version (vectors of two versions are never compared), and
    no texts encode to a 0 × dim matrix."""
    enc = default_encoder()
    assert USE_PACKAGE in enc.name and enc.dim == 512
    assert enc.encode([]).shape == (0, 512)
    enc.load()
    assert enc.loaded
