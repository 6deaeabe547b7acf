"""Unit tests of text normalisation, segmentation and page analysis (matching.text/tokenize/analyze)."""

from __future__ import annotations

import opencc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.analyze import LEAD_CHARS, LEAD_WEIGHT, TITLE_WEIGHT, analyze, make_page
from matching.text import html_to_text, normalize
from matching.tokenize import Tokenizer, normalize_keyword, stopwords
from matching.types import Page
from service.demo.loader import demo_pages

ARTICLE_HTML = """<!doctype html>
<html><head><title>空调以旧换新补贴</title>
<style>.ad { color: red } body { font-family: 宋体 }</style>
<script>var tracker = "统计脚本"; window.onload = function () {};</script>
</head>
<body>
<header>网站页眉 登录 注册</header>
<nav><a href="/">首页</a> <a href="/sports">体育频道</a></nav>
<article><h1>入夏空调销量走高</h1>
<p>多地推出家电以旧换新补贴，变频空调成为热门。</p>
<script>document.write("内联广告脚本")</script>
</article>
<footer>版权所有 联系我们</footer>
</body></html>"""


@pytest.fixture(scope="module")
def plain() -> Tokenizer:
    """jieba's dictionary alone, no advertiser keywords."""
    return Tokenizer()


@pytest.fixture(scope="module")
def with_keywords() -> Tokenizer:
    return Tokenizer(["新能源汽车", "家电清洗", "電動汽車充電樁"])


@pytest.fixture(scope="module")
def s2t() -> opencc.OpenCC:
    return opencc.OpenCC("s2t")


# ---- HTML -----------------------------------------------------------------------------------------
def test_html_keeps_article_text() -> None:
    """The visible article text of an HTML page survives stripping."""
    doc = html_to_text(ARTICLE_HTML)
    assert "多地推出家电以旧换新补贴，变频空调成为热门。" in doc.text
    assert "入夏空调销量走高" in doc.text


@pytest.mark.parametrize("boilerplate", ["统计脚本", "内联广告脚本", "font-family", "宋体", "网站页眉",
                                         "体育频道", "版权所有", "<p>", "</"])
def test_html_drops_scripts_styles_navigation_and_tags(boilerplate: str) -> None:
    """Scripts, styles, header, nav, footer and tags contribute no text."""
    assert boilerplate not in html_to_text(ARTICLE_HTML).text


def test_html_title_element_is_the_title() -> None:
    """The <title> element becomes the document title."""
    assert html_to_text(ARTICLE_HTML).title == "空调以旧换新补贴"


def test_html_without_title_falls_back_to_h1() -> None:
    """A page without <title> takes its first <h1> as the title."""
    doc = html_to_text("<html><body><h1>新能源汽车续航</h1><p>正文</p></body></html>")
    assert doc.title == "新能源汽车续航"


def test_make_page_uses_html_title_normalised() -> None:
    """make_page takes the title from HTML and normalises it like the body."""
    page = make_page(html="<title>網路營銷 ＡＢＣ</title><body><p>正文</p></body>")
    assert page.title == "网络营销 abc"
    assert page.body == "正文"


def test_make_page_explicit_title_wins_over_html_title() -> None:
    """A title given by the caller takes precedence over the HTML <title>."""
    page = make_page(title="调用方标题", html=ARTICLE_HTML)
    assert page.title == "调用方标题"


def test_make_page_joins_text_and_html() -> None:
    """Text and HTML given together both end up in the body."""
    page = make_page(text="纯文本部分", html="<p>网页部分</p>")
    assert "纯文本部分" in page.body and "网页部分" in page.body


# ---- normalisation --------------------------------------------------------------------------------
def test_full_width_becomes_half_width() -> None:
    """NFKC turns full-width Latin letters, digits, punctuation and spaces into ASCII."""
    assert normalize("ＡＢＣ１２３！　ｘｙｚ") == "abc123! xyz"


def test_latin_is_lower_cased() -> None:
    """Latin letters are lower-cased so iPhone and IPHONE are the same term."""
    assert normalize("iPhone 15 Pro") == normalize("IPHONE 15 PRO") == "iphone 15 pro"


def test_traditional_phrase_becomes_simplified_phrase() -> None:
    """Traditional Taiwan wording 網路營銷 becomes 网络营销."""
    assert normalize("網路營銷") == "网络营销"


@pytest.mark.parametrize("simplified", ["旅游行程安排", "程序员招聘", "核心技术", "下载文件", "健康指标",
                                        "线上课程", "复制粘贴", "资料下载", "智慧城市"])
def test_simplified_text_is_left_unchanged(simplified: str) -> None:
    """Normalising Simplified text that needs no NFKC or case change leaves it as written."""
    assert normalize(simplified) == simplified


@pytest.mark.parametrize("traditional,simplified", [("資料", "资料"), ("指標", "指标"), ("線上課程", "线上课程"),
                                                    ("複製", "复制"), ("軟體", "软件"), ("網路", "网络")])
def test_traditional_and_simplified_spellings_meet(traditional: str, simplified: str) -> None:
    """A word written in Traditional normalises to the same string as in Simplified."""
    assert normalize(traditional) == normalize(simplified)


def test_whitespace_is_collapsed_and_blank_lines_removed() -> None:
    """Runs of spaces and tabs become one space; blank lines disappear; ends are trimmed."""
    assert normalize("  第一段 \t\t 文字\n\n\n  \n第二段  ") == "第一段 文字\n第二段"


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_normalize_is_idempotent(text: str) -> None:
    """Normalising twice gives the same text as normalising once."""
    once = normalize(text)
    assert normalize(once) == once


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("網路營銷資料指標軟體手機新能源汽車ＡＢｃ１ 　\t")))
def test_normalize_keyword_is_idempotent(keyword: str) -> None:
    """A normalised keyword normalises to itself."""
    once = normalize_keyword(keyword)
    assert normalize_keyword(once) == once


def test_keyword_normalisation_ignores_script_width_and_inner_spaces() -> None:
    """Keywords in Traditional, full-width or spaced-out form normalise to one match key."""
    assert normalize_keyword("網路 營銷") == normalize_keyword("网络营销") == "网络营销"
    assert normalize_keyword("ＶＩＰ 会员") == "vip会员"
    assert normalize_keyword("Model Y") == "model y"
    assert normalize_keyword("網　路") == "网络"


# ---- segmentation ---------------------------------------------------------------------------------
@pytest.mark.parametrize("word", ["新能源汽车", "家电清洗"])
def test_user_word_is_split_without_the_user_dictionary(plain: Tokenizer, word: str) -> None:
    """Without the advertiser keyword, plain jieba does not keep the compound whole (precondition)."""
    assert word not in plain.tokens(normalize(f"我们关注{word}服务"), for_search=False)


@pytest.mark.parametrize("word", ["新能源汽车", "家电清洗"])
def test_user_word_comes_out_as_one_token(with_keywords: Tokenizer, word: str) -> None:
    """An advertiser keyword added as a user word is segmented as one token."""
    assert word in with_keywords.tokens(normalize(f"我们关注{word}服务"), for_search=False)


def test_search_mode_also_emits_sub_words_of_user_words(with_keywords: Tokenizer) -> None:
    """In search mode a page about 新能源汽车 also yields 汽车."""
    toks = with_keywords.tokens(normalize("新能源汽车降价"))
    assert "新能源汽车" in toks and "汽车" in toks


def test_user_words_are_normalised_when_added(with_keywords: Tokenizer) -> None:
    """A keyword added in Traditional characters is kept whole in Simplified text."""
    assert "电动汽车充电桩" in with_keywords.user_words
    assert "电动汽车充电桩" in with_keywords.tokens(normalize("小区安装电动汽车充电桩"), for_search=False)


def test_stopwords_are_removed(plain: Tokenizer) -> None:
    """Function words and news boilerplate (我们, 的, 是, 记者, 责任编辑) never become terms."""
    toks = plain.tokens(normalize("记者报道：我们的手机是一个好的选择。责任编辑：王五"))
    assert "手机" in toks and "选择" in toks
    assert {"我们", "的", "是", "一个", "记者", "责任编辑"}.isdisjoint(toks)
    assert set(toks).isdisjoint(stopwords())


def test_digits_punctuation_and_single_characters_are_dropped(plain: Tokenizer) -> None:
    """Pure numbers, punctuation and one-character words are not terms."""
    toks = plain.tokens(normalize("2024 年 ，。！ 猫 吃 鱼 空调"))
    assert toks == ["空调"]


def test_latin_words_are_terms(plain: Tokenizer) -> None:
    """Lower-cased Latin words such as brand names become terms."""
    assert "iphone" in plain.tokens(normalize("新款iPhone手机发布"))


def test_traditional_article_gives_the_tokens_of_its_simplified_original(
        plain: Tokenizer, s2t: opencc.OpenCC) -> None:
    """Every demo article converted to Traditional yields exactly the weighted terms of the Simplified one."""
    for p in demo_pages():
        simplified = analyze(make_page(title=p["title"], text=p["text"]), plain)
        traditional = analyze(make_page(title=s2t.convert(p["title"]), text=s2t.convert(p["text"])), plain)
        assert traditional.counts == simplified.counts, p["id"]


# ---- analysis -------------------------------------------------------------------------------------
def test_title_terms_weigh_more_than_body_terms(plain: Tokenizer) -> None:
    """A term in the title counts TITLE_WEIGHT; the same count in the body counts less."""
    terms = analyze(Page(title="空调", body="冰箱"), plain)
    assert terms.counts["空调"] == TITLE_WEIGHT
    assert terms.counts["空调"] > terms.counts["冰箱"]


def test_lead_weighs_more_than_the_rest_of_the_body(plain: Tokenizer) -> None:
    """A term in the first LEAD_CHARS characters counts LEAD_WEIGHT, later ones count 1."""
    body = "冰箱" + "。" * LEAD_CHARS + "洗衣机"
    terms = analyze(Page(title="", body=body), plain)
    assert terms.counts["冰箱"] == LEAD_WEIGHT
    assert terms.counts["洗衣机"] == 1.0


def test_title_repeated_as_first_body_line_counts_once(plain: Tokenizer) -> None:
    """When the body starts with the title, the title's words are not counted again as lead."""
    repeated = analyze(Page(title="空调补贴", body="空调补贴\n正文"), plain)
    alone = analyze(Page(title="空调补贴", body="正文"), plain)
    assert repeated.counts == alone.counts


def test_analyze_counts_accumulate_over_occurrences(plain: Tokenizer) -> None:
    """Each occurrence of a term adds its position's weight."""
    terms = analyze(Page(title="", body="空调 空调 空调"), plain)
    assert terms.counts["空调"] == 3 * LEAD_WEIGHT
