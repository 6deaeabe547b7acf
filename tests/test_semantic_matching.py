"""The semantic signal in the matcher, with the real sentence encoder: which blend a page is ranked
with, what meaning alone retrieves and ranks, and what it leaves under the floor."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from index import builder
from index.encoding import encode_texts
from matching.analyze import make_page
from matching.catalog import PreparedCatalog
from matching.encoder import default_encoder
from matching.matcher import FIRST_VIEW, Blend, MatchConfig, Matcher
from matching.semantic import ad_text, page_vector
from matching.signals import SIGNALS
from matching.types import Ad, Page, PageTerms


def ad(name: str, title: str, keywords: list[str]) -> Ad:
    return Ad(id=name, campaign_id=f"cmp-{name}", advertiser_id=f"adv-{name}", title=title,
              keywords=tuple(keywords), bid_fen=100)


ADS = [ad("realty", "滨江新房开盘", ["新房", "楼盘", "首付"]),
       ad("food", "火锅外卖满减", ["火锅", "外卖", "餐厅"]),
       ad("telecom", "手机套餐流量不限", ["手机套餐", "流量", "话费"]),
       ad("auto", "新能源汽车试驾", ["新能源汽车", "试驾", "充电桩"]),
       ad("travel", "海岛旅游特价", ["旅游", "机票", "酒店"]),
       ad("baby", "进口奶粉特惠", ["奶粉", "纸尿裤", "母婴"]),
       ad("edu", "少儿英语培训", ["英语培训", "少儿英语", "外教"]),
       ad("game", "热门手游下载", ["手游", "游戏", "礼包"]),
       ad("pet", "宠物粮食", ["猫粮", "狗粮", "宠物"]),
       ad("beauty", "护肤品专柜", ["护肤品", "面膜", "精华"])]
# About borrowing to buy a home, in none of the realty ad's words (新房, 楼盘, 首付, 滨江, 开盘).
LOAN_PAGE = make_page(title="申请住房贷款要注意什么",
                      text="想买房的年轻人向银行申请商业贷款，贷款利率和还款年限要提前算清楚，公积金贷款额度也要查询。")
# About something no ad sells, with one word of the catalog (手机) in it.
ASTRONOMY_PAGE = make_page(title="天文学家发现遥远星系",
                           text="科学家用手机拍下望远镜观测到的星系，一百亿光年外有一个超大质量黑洞。")
LEXICAL_PAGES = [make_page(title="3G手机资费", text="运营商推出手机套餐，流量更多，话费更低。"),
                 make_page(title="新盘开售", text="城东楼盘开盘，首付两成，新房户型受欢迎。")]


@pytest.fixture(scope="module")
def semantic_catalog() -> PreparedCatalog:
    enc = default_encoder()
    return builder.build(ADS, semantic=(enc, encode_texts([ad_text(a) for a in ADS], enc)))


@pytest.fixture(scope="module")
def lexical_catalog() -> PreparedCatalog:
    return builder.build(ADS)


def analysed(m: Matcher, page: Page) -> PageTerms:
    """The page's terms with its vector, as after the analyzer (or inline encoding)."""
    return dataclasses.replace(m.analyze(page), vector=page_vector(page, default_encoder()))


def score_of(m: Matcher, terms: PageTerms, ad_id: str) -> float:
    s = m.scores(terms)
    if s is None:
        return 0.0
    rows = {m.catalog.ads[int(r)].id: i for i, r in enumerate(s.evidence.rows)}
    return float(s.score[rows[ad_id]]) if ad_id in rows else 0.0


def test_a_page_without_a_vector_is_scored_as_by_a_catalog_without_the_encoder(
        semantic_catalog: PreparedCatalog, lexical_catalog: PreparedCatalog) -> None:
    """On its first view a page gets semantic 0 and exactly the signals and base scores a catalog built
    without the encoder gives it, so with neighbour support aside it ranks the same."""
    no_support = MatchConfig(first_view=dataclasses.replace(FIRST_VIEW, neighbours=0.0))
    with_sem, without = Matcher(semantic_catalog, no_support), Matcher(lexical_catalog, no_support)
    for page in LEXICAL_PAGES:
        a, b = with_sem.scores(with_sem.analyze(page)), without.scores(without.analyze(page))
        assert a is not None and b is not None
        np.testing.assert_array_equal(a.evidence.rows, b.evidence.rows)
        assert not a.evidence.values[:, SIGNALS.index("semantic")].any()
        np.testing.assert_allclose(a.evidence.values, b.evidence.values, atol=1e-6)
        np.testing.assert_allclose(a.base, b.base, atol=1e-6)
        ranked_a, ranked_b = with_sem.rank(with_sem.analyze(page), 5), without.rank(without.analyze(page), 5)
        assert ranked_a and [(c.ad.id, round(c.score, 5)) for c in ranked_a] == \
            [(c.ad.id, round(c.score, 5)) for c in ranked_b]
        assert all(c.signals.semantic == 0.0 for c in ranked_a)


def test_the_blend_is_chosen_by_whether_the_page_has_a_vector_the_catalog_can_use(
        semantic_catalog: PreparedCatalog, lexical_catalog: PreparedCatalog) -> None:
    """A page is ranked with the first-view blend until it has a vector, then with the analysed one
    (lexical signals scaled by the page's coverage, the semantic signal not); against a catalog without
    semantic rows its vector changes nothing."""
    cfg = MatchConfig(first_view=Blend.only("keyword"), analysed=Blend.only("semantic"))
    m = Matcher(semantic_catalog, cfg)
    page = LEXICAL_PAGES[1]
    first, second = m.scores(m.analyze(page)), m.scores(analysed(m, page))
    assert first is not None and second is not None
    keyword = SIGNALS.index("keyword")
    np.testing.assert_allclose(first.score, first.evidence.coverage * first.evidence.values[:, keyword], atol=1e-6)
    np.testing.assert_allclose(second.score, second.evidence.values[:, SIGNALS.index("semantic")], atol=1e-6)
    assert second.evidence.values[:, SIGNALS.index("semantic")].max() > 0
    plain = Matcher(lexical_catalog, cfg)
    s = plain.scores(analysed(plain, page))
    assert s is not None
    np.testing.assert_allclose(s.score, s.evidence.coverage * s.evidence.values[:, keyword], atol=1e-6)
    assert not s.evidence.values[:, SIGNALS.index("semantic")].any()


def test_an_ad_that_shares_no_word_with_a_page_ranks_first_by_its_meaning(semantic_catalog: PreparedCatalog) -> None:
    """An analysed page about taking a loan to buy a home ranks the new-homes ad first, none of its
    keywords in the page, with a semantic signal far above every unrelated ad's; its first view did
    not score it."""
    m = Matcher(semantic_catalog)
    terms = analysed(m, LOAN_PAGE)
    ranked = m.rank(terms, 5)
    assert ranked and ranked[0].ad.id == "realty"
    assert ranked[0].matched_keywords == ()
    assert not any(w in LOAN_PAGE.title + LOAN_PAGE.body for w in ("新房", "楼盘", "首付", "滨江", "开盘"))
    s = m.scores(terms)
    assert s is not None
    semantic = dict(zip((semantic_catalog.ads[int(r)].id for r in s.evidence.rows),
                        s.evidence.values[:, SIGNALS.index("semantic")], strict=True))
    assert semantic["realty"] > 0.15
    assert max(v for k, v in semantic.items() if k != "realty") < semantic["realty"] - 0.1
    assert score_of(m, terms, "realty") > m.config.floor > score_of(m, m.analyze(LOAN_PAGE), "realty")


def test_an_analysed_page_sharing_no_word_with_a_large_catalog_is_given_its_nearest_ads(
        semantic_catalog: PreparedCatalog) -> None:
    """When the catalog is past exhaustive scoring and the page shares no word with it, the candidates are
    the ads nearest the page in the semantic space (numpy's top n of the stored rows is the oracle), and the
    best of them is served."""
    cfg = MatchConfig(exhaustive=3, candidates=3)
    m = Matcher(semantic_catalog, cfg)
    assert len(semantic_catalog.ads) > max(cfg.exhaustive, cfg.candidates)
    plain = m.analyze(LOAN_PAGE)
    assert semantic_catalog.vectorizer.page([plain.counts]).nnz == 0  # no word in common
    assert m.scores(plain) is None  # on its first view there is nothing to go on
    terms = analysed(m, LOAN_PAGE)
    s = m.scores(terms)
    assert s is not None
    space, stored = semantic_catalog.semantic, semantic_catalog.ad_semantic
    assert space is not None and stored is not None and terms.vector is not None
    rows = stored.astype(np.float64)
    cos = (rows / np.linalg.norm(rows, axis=1, keepdims=True)) @ space.project(terms.vector)[0]
    np.testing.assert_array_equal(s.evidence.rows, np.sort(np.argsort(-cos)[:cfg.candidates]))
    assert [c.ad.id for c in m.rank(terms, 1)] == ["realty"]


def test_an_analysed_page_about_nothing_the_catalog_sells_stays_under_the_floor(
        semantic_catalog: PreparedCatalog) -> None:
    """An analysed page about astronomy scores every ad under the relevance floor, and so gets no ads;
    a floor just under its best score would let that ad through."""
    m = Matcher(semantic_catalog)
    terms = analysed(m, ASTRONOMY_PAGE)
    s = m.scores(terms)
    assert s is not None and s.evidence.coverage > 0  # it does share a word with the catalog
    best = float(s.score.max())
    assert 0 < best < m.config.floor
    assert s.evidence.values[:, SIGNALS.index("semantic")].max() < 0.05
    assert m.rank(terms, 5) == []
    lower = Matcher(semantic_catalog, MatchConfig(floor=best * 0.999))
    assert len(lower.rank(terms, 5)) >= 1
