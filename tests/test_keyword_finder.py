"""Oracle tests: the keyword finder against a brute-force substring search."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from matching.keywords import SHORT_KEYWORD, KeywordFinder
from matching.tokenize import normalize_keyword

# A small alphabet, so that keywords overlap, nest and repeat in the text.
_chars = st.sampled_from("汽车新能源手机油站a5g")
_keywords = st.lists(st.text(_chars, min_size=1, max_size=5), min_size=0, max_size=30)


def brute_force(keywords: list[str], text: str, terms: set[str]) -> set[str]:
    kws = {normalize_keyword(k) for k in keywords} - {""}
    return {k for k in kws if k in text and (len(k) > SHORT_KEYWORD or k in terms)}


@settings(max_examples=300, deadline=None)
@given(keywords=_keywords, text=st.text(_chars, max_size=60), data=st.data())
def test_finds_what_brute_force_finds(keywords: list[str], text: str, data: st.DataObject) -> None:
    """Every keyword in the text, overlapping and nested ones included; a short one only when it
    is also a segmentation term (terms are substrings of the text, as segmentation gives)."""
    spans = data.draw(st.lists(st.tuples(st.integers(0, 60), st.integers(1, 4)), max_size=20))
    terms = {text[i:i + n] for i, n in spans if i + n <= len(text)}
    # and keywords cut from the text itself, so that found ones overlap and nest
    cuts = data.draw(st.lists(st.tuples(st.integers(0, 60), st.integers(3, 6)), max_size=10))
    keywords = keywords + [text[i:i + n] for i, n in cuts if i + n <= len(text)]
    assert KeywordFinder(keywords).find(text, terms) == brute_force(keywords, text, terms)


def test_short_keyword_needs_to_be_a_term() -> None:
    """油 is inside 加油站 but is not one of its terms: not found; 汽车 as a term is."""
    finder = KeywordFinder(["油", "汽车", "加油站"])
    assert finder.find("城市加油站排队加油", {"加油站", "排队", "加油"}) == {"加油站"}
    assert finder.find("新能源汽车", {"新能源", "汽车"}) == {"汽车"}
    assert len(finder) == 3


def test_empty_finder_finds_nothing() -> None:
    assert KeywordFinder([]).find("任何文字", {"任何", "文字"}) == set()


def test_overlapping_and_nested_keywords_are_all_found() -> None:
    finder = KeywordFinder(["新能源汽车", "新能源", "能源汽车", "汽车降价", "车降"])
    assert finder.find("新能源汽车降价", set()) == {"新能源汽车", "新能源", "能源汽车", "汽车降价"}
