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

# OpenCC's tw2sp converts characters *and* Taiwan phrasing (網路→网络, 軟體→软件); running it on
# text that is already Simplified leaves it unchanged, so it is safe for every page.
_OPENCC_CONFIG = "tw2sp"
_lock = threading.Lock()


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
    """Traditional → Simplified Chinese (with Taiwan phrase conversion)."""
    with _lock:  # OpenCC converters are not documented as thread-safe.
        return _converter().convert(text)


def normalize(text: str) -> str:
    """NFKC (full-width → half-width), Traditional → Simplified, lower-case, collapsed spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = to_simplified(text)
    text = text.lower()
    text = _BLOCK_SPLIT.sub(" ", text)
    text = _MANY_NEWLINES.sub("\n", text)
    return text.strip()
