"""The console's words: message catalogs (``messages/zh.json``, ``messages/en.json``), never text in
templates. Simplified Chinese is the default; a cookie set by ``/console/lang/en`` switches."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

LANGS = ("zh", "en")
DEFAULT = "zh"
COOKIE = "admatch_lang"
HTML_LANG = {"zh": "zh-CN", "en": "en"}
_DIR = Path(__file__).parent / "messages"


@cache
def catalog(lang: str) -> dict[str, str]:
    return dict(json.loads((_DIR / f"{lang}.json").read_text(encoding="utf-8")))


def lang_of(cookie: str | None) -> str:
    return cookie if cookie in LANGS else DEFAULT


class Translator:
    def __init__(self, lang: str) -> None:
        self.lang = lang
        self._messages = catalog(lang)
        self._fallback = catalog(DEFAULT)

    def __call__(self, key: str, **values: Any) -> str:
        text = self._messages.get(key) or self._fallback.get(key) or key
        return text.format(**values) if values else text
