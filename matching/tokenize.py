"""Chinese word segmentation with advertiser keywords as user-dictionary words.

Contract: :class:`Tokenizer.tokens` returns normalised terms for one span of text. Every word
added with :meth:`Tokenizer.add_words` (advertiser keywords) comes back whole when it occurs, so
新能源汽车 is one term rather than 新能源 + 汽车; with ``for_search`` the sub-words of long
words are emitted as well, so a page about 新能源汽车 also yields 汽车.

Two engines hold the same dictionary. jieba-rs (rjieba) segments blocks of Han characters, Latin
letters and digits, which are nearly all of a page's text, about nine times faster than jieba; for
such blocks both give the same words (tests/test_tokenize_engines.py), in another order only where
they break a tie between equally likely cuts differently (一一一: 一一|一 or 一|一一), which no
caller depends on: every caller sums a block's words into term counts. Blocks with any of
``+#&._%-`` go to jieba itself, whose rules for those characters jieba-rs does not follow
(2017-2018, edu.nyse, 8.18-8.52).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable
from functools import lru_cache
from importlib import resources

import jieba
import rjieba
import stopwordsiso

from matching.text import normalize

jieba.setLogLevel(logging.WARNING)

# A term must contain a CJK ideograph or a Latin letter; pure digits and punctuation say nothing.
_MEANINGFUL = re.compile(r"[\u4e00-\u9fff a-z]")
_SPACE = re.compile(r"\s+")
# Frequency given to advertiser keywords: high enough that jieba keeps them whole.
_USER_WORD_FREQ = 200_000
# jieba segments text block by block, a block being a run of these characters (its own
# ``re_han_default``); everything between blocks is yielded character by character. A block's
# words depend on the block and the dictionary alone, so the words of short blocks are remembered
# (keywords, ad-copy phrases and short page phrases recur) until the dictionary changes.
_BLOCK = jieba.re_han_default
# A block with none of these (the rest of jieba's block characters) is segmented by jieba-rs.
_JIEBA_ONLY = re.compile(r"[+#&._%\-]")
_CACHED_BLOCK_CHARS = 24
_CACHED_BLOCKS = 1 << 17
# Distinct keywords normalised once each: a catalog repeats its keywords across many ads, and
# normalising one (NFKC + OpenCC) costs ~15 µs.
_CACHED_KEYWORDS = 1 << 20


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """stopwords-iso Chinese and English lists plus our own news-boilerplate list."""
    extra = resources.files("matching.data").joinpath("extra_stopwords.txt").read_text("utf-8")
    own = {line.strip() for line in extra.splitlines() if line.strip() and not line.startswith("#")}
    return frozenset(stopwordsiso.stopwords(["zh", "en"]) | own)


@lru_cache(maxsize=_CACHED_KEYWORDS)
def normalize_keyword(keyword: str) -> str:
    """A keyword as it is matched: normalised like page text, inner spaces removed for CJK."""
    kw = normalize(keyword)
    if re.search(r"[a-z0-9] [a-z0-9]", kw):
        return kw
    # Joining can form a term that normalisation maps (網 路 → 网路 → 网络): normalise again.
    return normalize(_SPACE.sub("", kw))


class Tokenizer:
    """A private jieba dictionary plus the advertiser keywords added to it."""

    def __init__(self, user_words: Iterable[str] = ()) -> None:
        self._jieba = jieba.Tokenizer()
        self._jieba.initialize()
        self._rust = rjieba.Jieba()  # the same dictionary, embedded in jieba-rs
        # Guards both dictionaries. rjieba releases the GIL while it segments and refuses (raises)
        # a word added meanwhile, so its cuts take the lock too.
        self._lock = threading.Lock()
        self._user_words: set[str] = set()
        self._stop = stopwords()
        self._block_words = self._new_block_cache()
        self.add_words(user_words)

    @property
    def user_words(self) -> frozenset[str]:
        return frozenset(self._user_words)

    def add_words(self, words: Iterable[str]) -> None:
        """Add normalised advertiser keywords to the dictionary (idempotent)."""
        with self._lock:
            added = False
            for word in words:
                w = normalize_keyword(word)
                if w and w not in self._user_words and " " not in w:
                    self._jieba.add_word(w, freq=_USER_WORD_FREQ)
                    self._rust.add_word(w, _USER_WORD_FREQ, None)
                    self._user_words.add(w)
                    added = True
            if added:  # a new word (and the dictionary's new total) may segment any block anew
                self._block_words = self._new_block_cache()

    def tokens(self, normalized_text: str, *, for_search: bool = True) -> list[str]:
        """Terms of already-normalised text, stopwords and noise removed, in order."""
        if not for_search:
            return self._kept(self._jieba.cut(normalized_text, HMM=True))
        # Block by block, as jieba's own cut does, so the words of recurring blocks are looked up.
        block_words = self._block_words
        out: list[str] = []
        for blk in _BLOCK.split(normalized_text):
            if blk:
                out += block_words(blk) if len(blk) <= _CACHED_BLOCK_CHARS else self._segment(blk)
        return out

    def _new_block_cache(self) -> Callable[[str], tuple[str, ...]]:
        return lru_cache(maxsize=_CACHED_BLOCKS)(self._segment)

    def _segment(self, block: str) -> tuple[str, ...]:
        if not _JIEBA_ONLY.search(block):
            with self._lock:
                words = self._rust.cut_for_search(block, True)
            return tuple(self._kept(words))
        return tuple(self._kept(self._jieba.cut_for_search(block, HMM=True)))

    def _kept(self, raw_tokens: Iterable[str]) -> list[str]:
        out: list[str] = []
        for raw in raw_tokens:
            tok = raw.strip()
            if not tok or tok in self._stop or not _MEANINGFUL.search(tok):
                continue
            if len(tok) == 1 and tok not in self._user_words:
                continue
            out.append(tok)
        return out
