"""Unit tests of the IAB taxonomy data file and the seed-term category classifier (matching.categories)."""

from __future__ import annotations

import math
from importlib import resources

import opencc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.analyze import analyze, make_page
from matching.categories import (
    DATA_FILE,
    SENSITIVE_TOPICS,
    Category,
    CategoryClassifier,
    Taxonomy,
    is_sensitive,
    load_taxonomy,
    parse_taxonomy,
    seed_words,
)
from matching.signals import SIGNALS
from matching.tokenize import Tokenizer, normalize_keyword, stopwords

TIER1_NAMES = {
    "Attractions",
    "Automotive",
    "Books and Literature",
    "Business and Finance",
    "Careers",
    "Communication",
    "Crime",
    "Disasters",
    "Education",
    "Entertainment",
    "Events",
    "Family and Relationships",
    "Fine Art",
    "Food & Drink",
    "Genres",
    "Healthy Living",
    "Hobbies & Interests",
    "Holidays",
    "Home & Garden",
    "Law",
    "Medical Health",
    "Personal Celebrations & Life Events",
    "Personal Finance",
    "Pets",
    "Politics",
    "Pop Culture",
    "Real Estate",
    "Religion & Spirituality",
    "Science",
    "Sensitive Topics",
    "Shopping",
    "Sports",
    "Style & Fashion",
    "Technology & Computing",
    "Travel",
    "Video Gaming",
    "War and Conflicts",
}
# Tier-1 nodes that are brand-unsafe in themselves, beside the children of Sensitive Topics.
SENSITIVE_TIER1 = {"380", "381", "389"}

# Short pages written for these tests: (tier-1 category expected first, title, text).
PAGES = {
    "football": (
        "Sports",
        "中超第十轮：上港主场2比1逆转恒大",
        "本场比赛上港队开场落后，下半场武磊头球扳平，补时阶段又打进点球完成逆转。"
        "主教练赛后表示球员们表现出色，球队积分榜排名升至第二。",
    ),
    "basketball": (
        "Sports",
        "NBA季后赛：勇士加时险胜火箭",
        "库里全场三分球12投7中得到35分，杜兰特贡献28分10个篮板，勇士在总决赛前拿下关键一战。",
    ),
    "car_review": (
        "Automotive",
        "试驾新款紧凑型SUV：油耗低、空间大",
        "这款车搭载1.5T发动机，匹配7速双离合变速箱，百公里综合油耗6.2升。内饰做工扎实，"
        "轴距2700毫米，后排空间宽敞，官方指导价12.98万元起，4S店已可试驾提车。",
    ),
    "mortgage": (
        "Real Estate",
        "首套房贷利率下调 购房者入市意愿升温",
        "多家银行下调首套房房贷利率，首付比例降至两成。受此影响，新房和二手房成交量回升，"
        "开发商加快推盘，刚需购房者看房积极，楼市调控政策仍在延续。",
    ),
    "earthquake": (
        "Disasters",
        "四川发生6.8级地震 已造成46人遇难",
        "中国地震台网测定，震中位于泸定县，震源深度16公里。地震造成大量房屋倒塌，"
        "已有46人遇难、16人失踪，伤亡人数仍在上升。救援队连夜赶赴灾区搜救，"
        "应急管理部启动应急响应，转移安置受灾群众，余震仍在持续。",
    ),
    "cosmetics": (
        "Style & Fashion",
        "秋冬护肤品测评：这款面霜保湿效果惊艳",
        "干皮和敏感肌都适合，质地像乳液一样好推开，上脸后补水保湿一整天。搭配精华液和防晒霜使用，"
        "第二天上妆不卡粉，粉底液服帖。口红试色也一并附上，这几个色号很显白。",
    ),
    "phone_launch": (
        "Technology & Computing",
        "新旗舰手机发布：骁龙芯片加折叠屏",
        "这款智能手机采用折叠屏设计，搭载最新骁龙处理器，后置三摄像头，电池支持快充。"
        "厂商在发布会上表示，新机跑分创下安卓阵营纪录，售价与iPhone旗舰持平。",
    ),
    "exam": (
        "Education",
        "高考志愿填报指南：分数线公布后如何选专业",
        "各省高考分数线陆续公布，考生和家长开始填报志愿。专家建议结合往年录取分数线和大学专业排名，"
        "不要只看学校名气。本科批次录取将于下月开始，考生可登录教育考试院查询成绩。",
    ),
    "movie": (
        "Entertainment",
        "国庆档票房破40亿 这部电影口碑逆袭",
        "影片上映首日排片不高，凭借豆瓣评分和观众口碑，票房一路走高。导演在首映礼上感谢剧组，"
        "主演的演技获得影迷好评，续集已确定定档明年春节档。",
    ),
    "murder": (
        "Crime",
        "男子持刀杀人潜逃 警方悬赏通缉",
        "案发后犯罪嫌疑人逃离现场，当地公安局立即成立专案组侦查。被害人经抢救无效死亡。"
        "民警经过三天追踪，在邻省将嫌疑人抓获，目前已被刑事拘留，案件正在进一步审理中。",
    ),
    "war": (
        "War and Conflicts",
        "边境冲突升级 双方军队交火",
        "据报道，两国军队在边境地区爆发激烈交火，空袭和炮击造成平民伤亡，数千难民逃离战区。"
        "联合国呼吁立即停火，但双方部队仍在前线增兵，战事可能进一步扩大。",
    ),
    "insurance": (
        "Personal Finance",
        "重疾险怎么买？理财规划师教你配置保险",
        "保险公司推出的重疾险产品保额、等待期和免责条款各不相同。投保前要看清保险条款，"
        "家庭理财应先配置医疗险和意外险，再考虑年金险和基金、股票等投资。",
    ),
    "mobile_game": (
        "Video Gaming",
        "王者荣耀新赛季上线 玩家吐槽抽卡太贵",
        "这款手游的新版本加入了新英雄和新皮肤，但不少玩家认为氪金门槛太高。"
        "游戏公司回应称将调整充值活动，同时推出防沉迷新规。",
    ),
}
SENSITIVE_PAGES = ("earthquake", "murder", "war")
BENIGN_PAGES = ("football", "car_review", "cosmetics", "phone_launch", "movie", "insurance")


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


@pytest.fixture(scope="module")
def classifier() -> CategoryClassifier:
    return CategoryClassifier()


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    """A tokenizer with every seed term added as a user word, as the classifier's callers do."""
    return Tokenizer(seed_words())


def classify_page(
    clf: CategoryClassifier, tok: Tokenizer, title: str, text: str, **kwargs: object
) -> list[tuple[Category, float]]:
    return clf.classify(analyze(make_page(title=title, text=text), tok).counts, **kwargs)  # type: ignore[arg-type]


# ---- the data file -------------------------------------------------------------------------------
def _rows() -> list[list[str]]:
    text = resources.files("matching.data").joinpath(DATA_FILE).read_text("utf-8")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return [ln.split("\t") for ln in lines[1:]]


def test_data_file_parses_with_every_tier1_node(taxonomy: Taxonomy) -> None:
    """The file loads and holds exactly the IAB 3.1 tier-1 nodes plus 60-130 nodes below them."""
    assert {c.name for c in taxonomy if c.tier == 1} == TIER1_NAMES
    assert 60 <= sum(1 for c in taxonomy if c.tier > 1) <= 130


def test_ids_are_unique_and_parents_exist(taxonomy: Taxonomy) -> None:
    """No id appears twice in the file and every parent id is a node of the file."""
    ids = [row[0] for row in _rows()]
    assert len(ids) == len(set(ids)) == len(taxonomy)
    for cat in taxonomy:
        assert cat.parent is None or cat.parent in taxonomy
        assert taxonomy.root(cat.id).tier == 1


def test_sensitive_nodes_are_the_brand_safety_nodes(taxonomy: Taxonomy) -> None:
    """Exactly Sensitive Topics, its descendants and Crime, Disasters, War and Conflicts are sensitive."""
    for cat in taxonomy:
        expected = taxonomy.root(cat.id).id in SENSITIVE_TIER1 | {SENSITIVE_TOPICS}
        assert cat.sensitive == expected, cat
    assert len(taxonomy.children(SENSITIVE_TOPICS)) == 11


def test_seed_lists_are_normalised_multi_character_words(taxonomy: Taxonomy) -> None:
    """Each node has 20-60 own seeds (tier 1: 20+ with children), normalised and never a stopword."""
    stop = stopwords()
    for cat in taxonomy:
        own = taxonomy.seeds(cat.id)
        assert len(own) == len(set(own)) <= 60, cat.id
        assert len(taxonomy.subtree_seeds(cat.id)) >= 20, cat.id
        if cat.tier > 1:
            assert len(own) >= 20, cat.id
        for seed in own:
            assert len(seed) >= 2 and normalize_keyword(seed) == seed and seed not in stop, seed


def test_seed_words_come_out_whole(tokenizer: Tokenizer) -> None:
    """With the seed words added, a multi-word seed such as 新能源汽车 is one term."""
    assert Tokenizer().tokens("今年新能源汽车卖得很好", for_search=False)[:2] == ["新能源", "汽车"]
    assert tokenizer.tokens("今年新能源汽车卖得很好", for_search=False)[0] == "新能源汽车"


@pytest.mark.parametrize(
    "bad, message",
    [
        ("id\tparent\tname\tname_zh\tsensitive\tseeds\n1\t\tA\t甲\t0\t汽车\n1\t\tB\t乙\t0\t体育\n", "twice"),
        ("id\tparent\tname\tname_zh\tsensitive\tseeds\n2\t9\tB\t乙\t0\t体育\n", "not in the file"),
        ("id\tparent\tname\tname_zh\tsensitive\tseeds\n2\t\tB\t乙\tyes\t体育\n", "sensitive 0/1"),
        ("id\tname\n", "header"),
    ],
)
def test_malformed_file_is_refused(bad: str, message: str) -> None:
    """Duplicate ids, unknown parents, bad flags and a wrong header raise ValueError saying which."""
    with pytest.raises(ValueError, match=message):
        parse_taxonomy(bad)


# ---- scoring ------------------------------------------------------------------------------------
TINY = (
    "id\tparent\tname\tname_zh\tsensitive\tseeds\n"
    "S\t\tSports\t体育\t0\t比赛|球员\n"
    "F\tS\tSoccer\t足球\t0\t足球|进球\n"
    "G\t\tGaming\t游戏\t0\t比赛|玩家\n"
)


def test_scores_match_a_hand_calculation() -> None:
    """Scores follow idf × log(1 + count), the share of tier-1 evidence and the confidence factor."""
    clf = CategoryClassifier(parse_taxonomy(TINY), evidence_scale=2.0)
    scores = clf.scores({"足球": 3.0, "比赛": 1.0, "玩家": 0.0, "天气": 5.0})
    shared, unique = math.log(1 + 2 / 2) / math.log(3), 1.0  # 比赛 is in both tier-1 subtrees
    soccer = unique * math.log(4)
    sports, gaming = soccer + shared * math.log(2), shared * math.log(2)
    total = sports + gaming
    confidence = 1 - math.exp(-total / 2.0)
    assert scores == pytest.approx(
        {"S": sports / total * confidence, "F": soccer / total * confidence, "G": gaming / total * confidence}
    )


def test_no_evidence_gives_no_categories(classifier: CategoryClassifier) -> None:
    """A page without any seed term gets no category rather than a guess."""
    assert classifier.classify({"的确": 2.0, "xyz": 1.0}) == []
    assert classifier.classify({}) == []


@pytest.mark.parametrize("key", sorted(PAGES))
def test_pages_get_their_tier1_category(
    key: str, classifier: CategoryClassifier, tokenizer: Tokenizer
) -> None:
    """Each sample page's best tier-1 category is the topic it was written about."""
    expected, title, text = PAGES[key]
    best = classify_page(classifier, tokenizer, title, text, top=1, tier=1)
    assert best and best[0][0].name == expected, best


@pytest.mark.parametrize("key", sorted(PAGES))
def test_traditional_text_gets_the_same_categories(
    key: str, classifier: CategoryClassifier, tokenizer: Tokenizer
) -> None:
    """A page converted to Traditional characters is classified as its Simplified original."""
    s2t = opencc.OpenCC("s2t")
    _, title, text = PAGES[key]
    simplified = classify_page(classifier, tokenizer, title, text, top=3, tier=1)
    traditional = classify_page(classifier, tokenizer, s2t.convert(title), s2t.convert(text), top=3, tier=1)
    assert [c for c, _ in traditional] == [c for c, _ in simplified]


@pytest.mark.parametrize("key", SENSITIVE_PAGES)
def test_disaster_crime_and_war_pages_are_sensitive(
    key: str, classifier: CategoryClassifier, tokenizer: Tokenizer
) -> None:
    """Earthquake casualties, a murder case and a war report are flagged brand-unsafe."""
    _, title, text = PAGES[key]
    assert is_sensitive(classify_page(classifier, tokenizer, title, text))


@pytest.mark.parametrize("key", BENIGN_PAGES)
def test_ordinary_pages_are_not_sensitive(
    key: str, classifier: CategoryClassifier, tokenizer: Tokenizer
) -> None:
    """Sports, cars, cosmetics, phones, films and insurance pages are not flagged."""
    _, title, text = PAGES[key]
    assert not is_sensitive(classify_page(classifier, tokenizer, title, text))


def test_child_category_rolls_up_into_its_parent(
    classifier: CategoryClassifier, tokenizer: Tokenizer
) -> None:
    """A football report names Soccer under Sports, and Sports scores at least as high."""
    _, title, text = PAGES["football"]
    found = {c.name: s for c, s in classify_page(classifier, tokenizer, title, text, top=5)}
    assert found["Soccer"] <= found["Sports"]
    only_tier2 = classify_page(classifier, tokenizer, title, text, top=1, tier=2)
    assert only_tier2[0][0].name == "Soccer"


def test_is_sensitive_accepts_categories_and_pairs(taxonomy: Taxonomy) -> None:
    """is_sensitive takes bare categories or classify's (category, score) pairs."""
    crime, sports = taxonomy["380"], taxonomy["483"]
    assert is_sensitive([crime]) and is_sensitive([(sports, 0.9), (crime, 0.1)])
    assert not is_sensitive([sports]) and not is_sensitive([])


_SEEDS = sorted(seed_words())


@settings(max_examples=200, deadline=None)
@given(
    counts=st.dictionaries(
        st.sampled_from(_SEEDS) | st.text(min_size=1, max_size=4),
        st.floats(min_value=0, max_value=1e6, allow_nan=False),
        max_size=40,
    ),
    top=st.integers(min_value=1, max_value=10),
)
def test_scores_are_bounded_sorted_and_roll_up(
    counts: dict[str, float], top: int, classifier: CategoryClassifier
) -> None:
    """Scores lie in [0, 1], come best first, and no child outscores its parent."""
    result = classifier.classify(counts, top=top, min_score=0.0)
    scores = [s for _, s in result]
    assert len(result) <= top and all(0.0 <= s <= 1.0 for s in scores)
    assert scores == sorted(scores, reverse=True)
    every = classifier.scores(counts)
    for cid, s in every.items():
        parent = classifier.taxonomy[cid].parent
        assert parent is None or every[parent] >= s


def test_category_signal_prefers_the_ad_in_the_pages_category() -> None:
    """The ``category`` signal: an ad whose words fall in the page's IAB category agrees with it,
    though the page's only catalog word (优惠) is in both ads; an ad from another category does not."""
    from index import builder
    from matching.analyze import make_page
    from matching.matcher import Matcher
    from matching.types import Ad

    ads = [
        Ad(id="car", campaign_id="c", advertiser_id="a", title="新款SUV试驾", keywords=("试驾", "发动机", "变速箱", "优惠"), bid_fen=100),
        Ad(id="food", campaign_id="c", advertiser_id="a", title="火锅外卖", keywords=("火锅", "菜谱", "餐厅", "优惠"), bid_fen=100),
    ]
    matcher = Matcher(builder.build(ads))
    page = make_page(title="车市观察", text="今年乘用车销量增长，多家车企推出新车型，经销商称车主更看重油耗和内饰，优惠不断。")
    scored = matcher.scores(matcher.analyze(page))
    assert scored is not None
    by_id = {ads[int(r)].id: float(v[SIGNALS.index("category")]) for r, v in zip(scored.evidence.rows, scored.evidence.values, strict=True)}
    assert by_id["car"] > 0.5
    assert by_id["food"] < 0.1
    ranked = matcher.rank(matcher.analyze(page), k=2)
    assert ranked and ranked[0].ad.id == "car" and ranked[0].signals.category == pytest.approx(by_id["car"])
