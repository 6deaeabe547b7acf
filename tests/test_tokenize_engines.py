"""Oracle tests: jieba-rs (rjieba) segments blocks of Han, Latin and digits exactly as jieba does.

The tokenizer hands such blocks to jieba-rs for speed and blocks with ``+#&._%-`` to jieba;
these tests hold jieba as the reference. If a new rjieba release changes its dictionary or its
algorithm, they fail before any page is segmented differently.
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
from collections import Counter
from functools import lru_cache

import jieba
import pytest
import rjieba
from hypothesis import example, given, settings
from hypothesis import strategies as st

from matching.analyze import analyze, make_page
from matching.text import normalize
from matching.tokenize import _BLOCK, _JIEBA_ONLY, Tokenizer
from service.demo.loader import demo_pages

jieba.setLogLevel(logging.WARNING)

USER_WORDS = ["新能源汽车", "量子机器狗", "家电清洗", "电动汽车充电桩", "软件", "云计算平台", "学年度",
              "5g手机", "iphone"]
_FREQ = 200_000
_HAN = re.compile("[\u4e00-\u9fd5]+")


@lru_cache(maxsize=1)
def dictionary_words() -> list[str]:
    """A spread of Han words from jieba's own dictionary (every 40th entry)."""
    path = os.path.join(os.path.dirname(jieba.__file__), "dict.txt")
    with open(path, encoding="utf-8") as f:
        words = [line.split()[0] for i, line in enumerate(f) if i % 40 == 0]
    return [w for w in words if all("\u4e00" <= c <= "\u9fd5" for c in w)]


@lru_cache(maxsize=1)
def engines() -> tuple[jieba.Tokenizer, rjieba.Jieba]:
    py = jieba.Tokenizer()
    py.initialize()
    rs = rjieba.Jieba()
    for w in USER_WORDS:
        py.add_word(w, freq=_FREQ)
        rs.add_word(w, _FREQ, None)
    return py, rs


_han_chars = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FD5)
_alnum = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_pieces = st.one_of(
    st.sampled_from(USER_WORDS + ["5g手机", "t恤", "b超", "卡拉ok"]),
    st.builds(lambda i: dictionary_words()[i % len(dictionary_words())], st.integers(0, 10**6)),
    st.text(_han_chars, min_size=1, max_size=3),  # unknown runs: the HMM's part
    st.text(_alnum, min_size=1, max_size=6),  # brand names, model numbers, years
)


@settings(max_examples=500, deadline=None)
@given(parts=st.lists(_pieces, min_size=1, max_size=12))
@example(parts=["一一一错"])  # a tie: jieba cuts 一一|一, jieba-rs 一|一一 — the same words, in another order
def test_han_latin_digit_blocks_segment_alike_in_both_engines(parts: list[str]) -> None:
    """Dictionary words, advertiser words, unknown characters, Latin and digits: the same words,
    each as often (in any order)."""
    py, rs = engines()
    block = "".join(parts)
    # Compared as multisets: every consumer of a block's words (matching/analyze.py and
    # matching/documents.py) sums them into term counts, so their order within a block is lost
    # anyway; where the two engines break a tie between equally probable cuts differently the
    # order differs, and a tie that gave *other* words would still fail here.
    assert Counter(rs.cut_for_search(block, True)) == Counter(py.cut_for_search(block, HMM=True))


def test_engines_agree_on_every_fast_block_of_the_demo_articles() -> None:
    py, rs = engines()
    texts = [normalize(p["title"] + "\n" + p["text"]) for p in demo_pages()]
    blocks = [b for t in texts for b in _BLOCK.split(t) if b and not _JIEBA_ONLY.search(b)]
    assert len(blocks) > 100 and any(not _HAN.fullmatch(b) for b in blocks)
    for b in blocks:
        assert rs.cut_for_search(b, True) == list(py.cut_for_search(b, HMM=True)), b


def test_engines_differ_on_mixed_blocks_which_therefore_stay_with_jieba() -> None:
    """jieba-rs keeps 2017-2018 whole where jieba splits it: why blocks with +#&._%- go to jieba."""
    py, rs = engines()
    assert rs.cut_for_search("2017-2018学年", True) != list(py.cut_for_search("2017-2018学年", HMM=True))
    tok = Tokenizer(USER_WORDS)
    for text in ("在2017-2018学年度", "edu.nyse上市", "8.18-8.52亿美元", "新款iphone手机发布"):
        expected = tok._kept(py.cut_for_search(text, HMM=True))
        assert tok.tokens(text) == expected, text


def test_tokenizer_terms_equal_jieba_alone_on_the_demo_articles() -> None:
    """Whole pages, mixed blocks included: the tokenizer's terms are jieba's terms."""
    tok = Tokenizer(USER_WORDS)
    py, _ = engines()
    for p in demo_pages():
        page = make_page(title=p["title"], text=p["text"])
        for text in (page.title, page.body):
            expected = [w for b in _BLOCK.split(text) if b for w in tok._kept(py.cut_for_search(b, HMM=True))]
            assert tok.tokens(text) == expected
        assert analyze(page, tok).counts  # and the page has terms at all


def test_words_added_while_pages_are_segmented_raise_nothing() -> None:
    """rjieba segments without the GIL and refuses a concurrent add; the tokenizer's lock orders them."""
    tok = Tokenizer()
    rng = random.Random(7)
    words = dictionary_words()
    errors: list[BaseException] = []
    stop = threading.Event()

    def segment() -> None:
        try:
            while not stop.is_set():  # long blocks: never served from the block cache
                tok.tokens("".join(rng.choice(words) for _ in range(40)))
        except BaseException as e:  # noqa: BLE001 - any failure is the finding
            errors.append(e)

    threads = [threading.Thread(target=segment) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for i in range(300):
            tok.add_words([f"测试新词{i:03d}号"])
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert "测试新词299号" in tok.tokens("这是测试新词299号产品", for_search=False)


@pytest.mark.parametrize("word", ["测试新词", "量子机器狗"])
def test_a_word_added_later_is_kept_whole_by_the_fast_engine(word: str) -> None:
    tok = Tokenizer()
    tok.tokens(f"我们关注{word}服务")  # cache the block's old words
    tok.add_words([word])
    assert word in tok.tokens(f"我们关注{word}服务")
