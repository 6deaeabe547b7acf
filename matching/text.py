"""Text normalisation: HTML → visible text, NFKC, Traditional → Simplified, Latin lower-case.

Contract: :func:`normalize` is idempotent and is applied identically to page text and to
advertiser keywords, so that a keyword matches the page whatever script either was written in.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import opencc
from selectolax.lexbor import LexborHTMLParser as HTMLParser

# Elements whose text is never article content: code, styling, navigation boilerplate.
_BOILERPLATE_TAGS = (
    "script", "style", "noscript", "template", "nav", "header", "footer", "aside",
    "form", "iframe", "svg", "button", "select", "menu",
)
_BLOCK_SPLIT = re.compile(r"[ \t\r\f\v]+")
_MANY_NEWLINES = re.compile(r"\n\s*\n+")

# Characters only (OpenCC t2s): Simplified text passes through unchanged and a Traditional page
# becomes its Simplified original. OpenCC's tw2sp also rewrites Taiwan phrasing, but its rules fire
# on words mainland text uses too (程序→进程, 行程→进程, 資料→数据, 指標→指针), so it changed
# Simplified pages and kept 資料 apart from 资料.
_OPENCC_CONFIG = "t2s"
_lock = threading.Lock()

# Taiwan-only terms, mapped on the Simplified text (so both scripts meet) to the mainland word.
# Only words with no other mainland reading belong here; a lookahead guards a known clash.
_TAIWAN_TERMS = {
    "网路": "网络", "软体": "软件", "硬体": "硬件", "资料库": "数据库", "记忆体": "内存",
    "滑鼠": "鼠标", "萤幕": "屏幕", "硬碟": "硬盘", "印表机": "打印机", "伺服器": "服务器",
    "部落格": "博客", "笔记型电脑": "笔记本电脑", "计程车": "出租车", "乙太网路": "以太网",
}
_TAIWAN_GUARDS = {"网路": "(?!由器)", "软体": "(?!动物)"}  # 网+路由器, 软体动物 (molluscs)
_TAIWAN_RE = re.compile("|".join(re.escape(k) + _TAIWAN_GUARDS.get(k, "")
                                 for k in sorted(_TAIWAN_TERMS, key=len, reverse=True)))
# Recorded in index manifests: an index is only valid for the conversion it was built with.
CONVERSION = f"opencc:{_OPENCC_CONFIG}+taiwan-terms:{len(_TAIWAN_TERMS)}"


@lru_cache(maxsize=1)
def _converter() -> opencc.OpenCC:
    return opencc.OpenCC(_OPENCC_CONFIG)


@dataclass(frozen=True, slots=True)
class HtmlDocument:
    """Visible text of an HTML page and its <title>, if any."""

    title: str
    text: str


def html_to_text(html: str) -> HtmlDocument:
    """Drop tags, scripts, styles and navigation boilerplate; keep block structure as newlines."""
    tree = HTMLParser(html)
    title_node = tree.css_first("title")
    title = title_node.text(strip=True) if title_node is not None else ""
    tree.strip_tags(list(_BOILERPLATE_TAGS))
    if tree.head is not None:
        tree.head.decompose()
    root = tree.body if tree.body is not None else tree.root
    text = root.text(separator="\n", strip=True) if root is not None else ""
    if not title:
        h1 = tree.css_first("h1")
        title = h1.text(strip=True) if h1 is not None else ""
    return HtmlDocument(title=title, text=text)


def to_simplified(text: str) -> str:
    """Traditional → Simplified Chinese characters, then Taiwan-only terms → mainland terms."""
    with _lock:  # OpenCC converters are not documented as thread-safe.
        text = _converter().convert(text)
    return _TAIWAN_RE.sub(lambda m: _TAIWAN_TERMS[m.group()], text)


def normalize(text: str) -> str:
    """NFKC (full-width → half-width), Traditional → Simplified, lower-case, collapsed spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = to_simplified(text)
    text = text.lower()
    text = _BLOCK_SPLIT.sub(" ", text)
    text = _MANY_NEWLINES.sub("\n", text)
    return text.strip()
