"""IAB Content Taxonomy 3.1 categories of pages and ads, and a seed-term classifier.

The taxonomy is our own data file ``matching/data/iab_zh.tsv``: IAB node ids, parents and English
names (IAB Tech Lab, CC BY 3.0) with a Chinese name, a brand-safety flag and Chinese seed terms
per node. Every tier-1 node is present; below them only the nodes advertisers buy.

Contract: :meth:`CategoryClassifier.classify` takes a page's weighted term counts (for example
``PageTerms.counts``) and returns (category, score) pairs, best first, each score in [0, 1]. A
node's evidence includes its descendants', so a parent never scores below its child. Seeds are
matched as whole terms: add :func:`seed_words` to the page's :class:`~matching.tokenize.Tokenizer`
so that multi-word seeds such as 新能源汽车 are produced as terms.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

DATA_FILE = "iab_zh.tsv"
SENSITIVE_TOPICS = "v9i3On"
# Evidence (idf-weighted log counts, summed over tier-1 nodes) at which a page's confidence is
# 1 - 1/e: a title mention of two or three distinctive seeds. Below it, scores shrink towards 0,
# so one passing mention of a seed cannot make a confident category.
EVIDENCE_SCALE = 4.0
DEFAULT_MIN_SCORE = 0.1
_COLUMNS = ("id", "parent", "name", "name_zh", "sensitive", "seeds")


@dataclass(frozen=True, slots=True)
class Category:
    """One taxonomy node. ``parent`` is None for tier 1; ``sensitive`` marks brand-unsafe topics."""

    id: str
    name: str
    name_zh: str
    tier: int
    parent: str | None
    sensitive: bool


class Taxonomy:
    """Taxonomy nodes in file order, with lookup by id, children and seed terms."""

    def __init__(self, categories: Sequence[Category], seeds: Mapping[str, Sequence[str]]) -> None:
        self._by_id = {c.id: c for c in categories}
        self._order = tuple(categories)
        self._seeds = {c.id: tuple(seeds.get(c.id, ())) for c in categories}
        kids: dict[str, list[Category]] = {c.id: [] for c in categories}
        for c in categories:
            if c.parent is not None:
                kids[c.parent].append(c)
        self._children = {k: tuple(v) for k, v in kids.items()}

    def __getitem__(self, category_id: str) -> Category:
        try:
            return self._by_id[category_id]
        except KeyError:
            raise KeyError(f"no IAB category {category_id!r} in {DATA_FILE}") from None

    def get(self, category_id: str) -> Category | None:
        return self._by_id.get(category_id)

    def __contains__(self, category_id: object) -> bool:
        return category_id in self._by_id

    def __iter__(self) -> Iterator[Category]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def children(self, category_id: str) -> tuple[Category, ...]:
        return self._children[self[category_id].id]

    def root(self, category_id: str) -> Category:
        """The tier-1 ancestor of a node (the node itself for tier 1)."""
        cat = self[category_id]
        while cat.parent is not None:
            cat = self[cat.parent]
        return cat

    def seeds(self, category_id: str) -> tuple[str, ...]:
        """The node's own seed terms, as written in the data file."""
        return self._seeds[self[category_id].id]

    def subtree_seeds(self, category_id: str) -> frozenset[str]:
        """Seeds of the node and all its descendants: the evidence that counts for it."""
        out = set(self.seeds(category_id))
        for child in self.children(category_id):
            out |= self.subtree_seeds(child.id)
        return frozenset(out)

    @property
    def seed_words(self) -> frozenset[str]:
        return frozenset(s for seeds in self._seeds.values() for s in seeds)


def parse_taxonomy(text: str) -> Taxonomy:
    """Parse the TSV format of ``iab_zh.tsv`` ('#' comments, one header line).

    Raises ValueError naming the line when a row is malformed, an id repeats or a parent is unknown.
    """
    rows: list[tuple[int, list[str]]] = []
    header_seen = False
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if not header_seen:
            if tuple(cols) != _COLUMNS:
                raise ValueError(f"line {lineno}: expected the header {'/'.join(_COLUMNS)}")
            header_seen = True
            continue
        if len(cols) != len(_COLUMNS) or cols[4] not in ("0", "1") or not cols[0] or not cols[5]:
            raise ValueError(f"line {lineno}: expected id, parent, name, name_zh, sensitive 0/1, seeds")
        rows.append((lineno, cols))
    parents: dict[str, str | None] = {}
    for lineno, cols in rows:
        if cols[0] in parents:
            raise ValueError(f"line {lineno}: category id {cols[0]!r} appears twice")
        parents[cols[0]] = cols[1] or None
    for lineno, cols in rows:
        if cols[1] and cols[1] not in parents:
            raise ValueError(f"line {lineno}: parent {cols[1]!r} of {cols[0]!r} is not in the file")

    def tier(cid: str) -> int:
        depth, seen, p = 1, {cid}, parents[cid]
        while p is not None:
            if p in seen:
                raise ValueError(f"category {cid!r} is its own ancestor")
            seen.add(p)
            depth, p = depth + 1, parents[p]
        return depth

    categories = [
        Category(
            id=c[0], name=c[2], name_zh=c[3], tier=tier(c[0]), parent=c[1] or None, sensitive=c[4] == "1"
        )
        for _, c in rows
    ]
    seeds = {c[0]: [s for s in c[5].split("|") if s] for _, c in rows}
    return Taxonomy(categories, seeds)


@lru_cache(maxsize=1)
def load_taxonomy() -> Taxonomy:
    """The package's taxonomy, read once."""
    return parse_taxonomy(resources.files("matching.data").joinpath(DATA_FILE).read_text("utf-8"))


def seed_words(taxonomy: Taxonomy | None = None) -> frozenset[str]:
    """All seed terms, to pass to ``Tokenizer.add_words`` so that each comes out as one term."""
    return (taxonomy or load_taxonomy()).seed_words


def is_sensitive(categories: Iterable[Category | tuple[Category, float]]) -> bool:
    """True when any of ``categories`` (Category objects, or the pairs classify returns) is sensitive."""
    return any((c if isinstance(c, Category) else c[0]).sensitive for c in categories)


class CategoryClassifier:
    """Scores pages against the taxonomy's seed terms; immutable and safe to share between threads.

    A seed's weight is an idf over tier-1 subtrees, log(1 + N/df) / log(1 + N), so a seed shared by
    several tier-1 topics (自动驾驶: cars and technology) says less than one used by a single topic. A
    node's evidence is the sum over its subtree's seeds of weight × log(1 + count): repeating a
    word adds little, and several different topic words add a lot. The score is the node's share
    of all tier-1 evidence times a confidence 1 - exp(-evidence / evidence_scale).
    """

    def __init__(self, taxonomy: Taxonomy | None = None, *, evidence_scale: float = EVIDENCE_SCALE) -> None:
        if evidence_scale <= 0:
            raise ValueError(f"evidence_scale of {evidence_scale} must be positive")
        self.taxonomy = taxonomy or load_taxonomy()
        self._scale = evidence_scale
        self._nodes = tuple(self.taxonomy)
        self._roots = tuple(i for i, c in enumerate(self._nodes) if c.tier == 1)
        subtree = [self.taxonomy.subtree_seeds(c.id) for c in self._nodes]
        df = Counter(s for i in self._roots for s in subtree[i])
        n = len(self._roots)
        self._weight = {s: math.log1p(n / d) / math.log1p(n) for s, d in df.items()}
        holders: dict[str, list[int]] = {}
        for i, seeds in enumerate(subtree):
            for s in seeds:
                holders.setdefault(s, []).append(i)
        self._holders = {s: tuple(v) for s, v in holders.items()}
        self._rank = {c.id: i for i, c in enumerate(self._nodes)}

    def seed_weight(self, term: str) -> float:
        """The idf-like weight of a seed in (0, 1]; 0 for a term that is no seed."""
        return self._weight.get(term, 0.0)

    def scores(self, counts: Mapping[str, float]) -> dict[str, float]:
        """Score in [0, 1] of every node with any evidence, by category id.

        Counts that are not positive finite numbers are ignored.
        """
        raw = [0.0] * len(self._nodes)
        for term, count in counts.items():
            nodes = self._holders.get(term)
            if nodes is None or not 0 < count < math.inf:
                continue
            evidence = self._weight[term] * math.log1p(count)
            for i in nodes:
                raw[i] += evidence
        total = sum(raw[i] for i in self._roots)
        if total <= 0:
            return {}
        confidence = -math.expm1(-total / self._scale)
        return {self._nodes[i].id: min(1.0, r / total * confidence) for i, r in enumerate(raw) if r > 0}

    def classify(
        self,
        counts: Mapping[str, float],
        top: int = 3,
        min_score: float = DEFAULT_MIN_SCORE,
        *,
        tier: int | None = None,
    ) -> list[tuple[Category, float]]:
        """At most ``top`` (category, score) pairs scoring ≥ ``min_score``, best first.

        ``tier`` restricts the answer to one tier (1: top-level topics only); by default all tiers
        compete, so a topic and its children may both appear. Ties go to the broader node, then to
        file order.
        """
        if top <= 0:
            return []
        found = [(self.taxonomy[cid], s) for cid, s in self.scores(counts).items() if s >= min_score]
        if tier is not None:
            found = [(c, s) for c, s in found if c.tier == tier]
        found.sort(key=lambda cs: (-cs[1], cs[0].tier, self._rank[cs[0].id]))
        return found[:top]
