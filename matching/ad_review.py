"""Creative review under the Advertising Law (广告法): which rules an ad's text breaks, and which
licensed classes (medical, drugs, finance, education) it belongs to.

Pure: text in, findings out. The rules are data (``matching/data/ad_law.tsv``: each with the
article it comes from and a reason in Chinese and English); they are matched on the ad's title,
description and keywords after :func:`matching.text.normalize` (NFKC, Traditional → Simplified,
lower case), so 國家級, ＮＯ．１ and 通過率１００％ are found like 国家级, no.1 and 通过率100%; and again
on the same text with spaces and decorative separators (· • * _ ~ -) removed, so 最 佳 and 包-过 are
found too. Licensed classes are also found from the ad's IAB target categories.

Contract: :func:`review_ad` returns every finding once per (rule, term, field) — for a licence rule
once per (rule, field) — in field order (title, description, keywords, target_categories), within
a field the claims in rule order, then the licence findings. An empty result means the ad passes; any finding means it needs a human reviewer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Literal, cast

from matching.text import normalize

DATA_FILE = "ad_law.tsv"
Kind = Literal["claim", "licence", "context"]
FIELDS = ("title", "description", "keywords", "target_categories")
_SEPARATORS = re.compile(r"[\s·•*_~\-—]+")
_LATIN = re.compile(r"[a-z0-9.]+")


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    article: str
    kind: Kind
    scope: str  # claim: "all" | "if:a,b" | "unless:a,b"; licence and context: their name
    pattern: re.Pattern[str] | None  # None: an IAB rule (``categories``)
    categories: frozenset[str]
    reason_zh: str
    reason_en: str

    def applies(self, contexts: frozenset[str]) -> bool:
        """Whether a claim rule counts for an ad with these contexts and licence classes."""
        mode, _, names = self.scope.partition(":")
        wanted = set(names.split(",")) if names else set()
        if mode == "if":
            return bool(wanted & contexts)
        if mode == "unless":
            return not wanted & contexts
        return True


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    article: str
    term: str  # what matched, as normalised (or the IAB id)
    field: str  # title | description | keywords | target_categories
    reason_zh: str
    reason_en: str


def _term_pattern(terms: str) -> str:
    """Literal terms (any script, any width) as one alternation over normalised text; Latin terms
    only as whole words (otc, not the otc of hotcakes)."""
    out = []
    for term in sorted({normalize(t) for t in terms.split("|") if t.strip()}, key=len, reverse=True):
        escaped = re.escape(term)
        out.append(f"(?<![a-z0-9]){escaped}(?![a-z0-9])" if _LATIN.fullmatch(term) else escaped)
    return "|".join(out)


def parse_rules(text: str) -> tuple[Rule, ...]:
    """The rules of a file in the format of ``ad_law.tsv`` ('#' comments, one header line)."""
    rules: list[Rule] = []
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    for n, line in enumerate(lines[1:], start=2):
        cols = line.split("\t")
        if len(cols) != 7:
            raise ValueError(f"{DATA_FILE} rule line {n}: {len(cols)} columns, expected 7: {line[:60]!r}")
        rule_id, article, kind, scope, pattern, zh, en = (c.strip() for c in cols)
        if kind not in ("claim", "licence", "context"):
            raise ValueError(f"{DATA_FILE} rule {rule_id}: kind {kind!r} is not claim, licence or context")
        if kind == "claim" and not re.fullmatch(r"all|(if|unless):[a-z_]+(,[a-z_]+)*", scope):
            raise ValueError(f"{DATA_FILE} rule {rule_id}: scope {scope!r} is not all, if:<ctx> or unless:<ctx>")
        categories: frozenset[str] = frozenset()
        compiled: re.Pattern[str] | None = None
        if pattern.startswith("iab:"):
            categories = frozenset(pattern[4:].split("|"))
        else:
            compiled = re.compile(pattern[3:] if pattern.startswith("re:") else _term_pattern(pattern))
        rules.append(Rule(rule_id, article, cast(Kind, kind), scope, compiled, categories, zh, en))
    return tuple(rules)


@lru_cache(maxsize=1)
def load_rules() -> tuple[Rule, ...]:
    return parse_rules(resources.files("matching.data").joinpath(DATA_FILE).read_text("utf-8"))


@lru_cache(maxsize=1)
def rules_by_id() -> dict[str, Rule]:
    """The first line of each rule id: its article and reasons."""
    out: dict[str, Rule] = {}
    for rule in load_rules():
        out.setdefault(rule.id, rule)
    return out


def _variants(text: str) -> tuple[str, ...]:
    norm = normalize(text)
    compact = _SEPARATORS.sub("", norm)
    return (norm,) if compact == norm else (norm, compact)


def _matches(rule: Rule, texts: Sequence[str]) -> list[str]:
    assert rule.pattern is not None
    found: dict[str, None] = {}
    for t in texts:
        for m in rule.pattern.finditer(t):
            found.setdefault(m.group(), None)
    return list(found)


def review_ad(title: str, description: str = "", keywords: Iterable[str] = (),
              target_categories: Iterable[str] = (), rules: Sequence[Rule] | None = None) -> tuple[Finding, ...]:
    """Every rule the ad breaks and every licensed class it belongs to (see the module contract)."""
    rules = load_rules() if rules is None else rules
    # keywords one by one: " | " keeps one keyword's end from joining the next one's start
    texts = {"title": _variants(title), "description": _variants(description),
             "keywords": _variants(" | ".join(keywords))}
    cats = set(target_categories)
    contexts: set[str] = set()
    licences: list[Finding] = []
    for rule in rules:
        if rule.kind == "claim":
            continue
        if rule.pattern is None:
            hits = [("target_categories", c) for c in sorted(cats & rule.categories)]
        else:
            hits = [(f, t) for f in FIELDS[:3] for t in _matches(rule, texts[f])]
        if hits:
            contexts.add(rule.scope)
        if rule.kind == "licence":
            licences += [Finding(rule.id, rule.article, term, f, rule.reason_zh, rule.reason_en) for f, term in hits]
    seen: set[tuple[str, str, str]] = set()
    out: list[Finding] = []
    for field in FIELDS:
        for rule in rules:
            if rule.kind != "claim" or rule.pattern is None or field == "target_categories":
                continue
            if not rule.applies(frozenset(contexts)):
                continue
            for term in _matches(rule, texts[field]):
                if (rule.id, term, field) not in seen:
                    seen.add((rule.id, term, field))
                    out.append(Finding(rule.id, rule.article, term, field, rule.reason_zh, rule.reason_en))
        for f in licences:
            if f.field == field and (f.rule, "", field) not in seen:
                seen.add((f.rule, "", field))
                out.append(f)
    return tuple(out)
