"""Publisher brand controls: which ads a publisher (or an exchange's request) refuses beside its pages.

Contract: :meth:`BrandControls.allows` is pure and cheap; an ad's IAB categories come from
:class:`AdCategories` (its declared target categories and its keywords and title classified
against the taxonomy, with every ancestor), so blocking a tier-1 category blocks its children
too. An ad's advertiser domain (OpenRTB ``adomain``) is its landing URL's host without ``www.``;
blocking ``example.com`` blocks ``shop.example.com`` as well, never ``badexample.com``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from cachetools import LRUCache

from matching.categories import CategoryClassifier
from matching.types import Ad

# A category scoring at least this share of the ad's best one is one of the ad's categories: an
# ad's few keywords give little evidence, so the absolute scores (confidence-weighted) stay small.
AD_CATEGORY_SHARE = 0.5


def ad_domain(landing_url: str) -> str:
    """The advertiser domain of a landing URL: its host, lower-cased, without ``www.``; "" when
    the URL has no host."""
    host = (urlsplit(landing_url).hostname or "").rstrip(".").lower()
    return host.removeprefix("www.")


def normalise_domain(domain: str) -> str:
    """A domain as a publisher may write it (``https://WWW.Example.com/``) → ``example.com``."""
    d = domain.strip().lower()
    if "//" in d:
        d = urlsplit(d).hostname or ""
    return d.split("/")[0].rstrip(".").removeprefix("www.")


def domain_blocked(domain: str, blocked: frozenset[str]) -> bool:
    """True when ``domain`` is one of ``blocked`` or a subdomain of one."""
    if not blocked or not domain:
        return False
    parts = domain.split(".")
    return any(".".join(parts[i:]) in blocked for i in range(len(parts)))


class AdCategories:
    """IAB category ids of ads, with their ancestors, computed once per ad text (LRU)."""

    def __init__(self, classifier: CategoryClassifier, size: int = 200_000) -> None:
        self._classifier = classifier
        self._taxonomy = classifier.taxonomy
        self._seeds = tuple(sorted(self._taxonomy.seed_words, key=len, reverse=True))
        self._cache: LRUCache[tuple[str, str, tuple[str, ...], tuple[str, ...]], frozenset[str]] = LRUCache(size)

    def of(self, ad: Ad) -> frozenset[str]:
        key = (ad.id, ad.title, ad.keywords, ad.target_categories)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._compute(ad)
        return found

    def _compute(self, ad: Ad) -> frozenset[str]:
        counts = dict.fromkeys((k.lower() for k in ad.keywords), 1.0)
        title = ad.title.lower()
        counts.update(dict.fromkeys((s for s in self._seeds if s in title), 1.0))
        scores = self._classifier.scores(counts)
        best = max(scores.values(), default=0.0)
        ids = {cid for cid, s in scores.items() if s >= AD_CATEGORY_SHARE * best > 0}
        ids.update(c for c in ad.target_categories if c in self._taxonomy)
        out: set[str] = set()
        for cid in ids:
            node = self._taxonomy.get(cid)
            while node is not None:
                out.add(node.id)
                node = self._taxonomy.get(node.parent) if node.parent else None
        return frozenset(out)


@dataclass(frozen=True, slots=True)
class BrandControls:
    """What must not appear: IAB categories (any tier), advertiser ids, advertiser domains."""

    categories: frozenset[str] = frozenset()
    advertisers: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()

    @classmethod
    def of(cls, categories: Iterable[str] = (), advertisers: Iterable[str] = (),
           domains: Iterable[str] = ()) -> BrandControls:
        return cls(frozenset(categories), frozenset(advertisers),
                   frozenset(d for d in (normalise_domain(x) for x in domains) if d))

    @property
    def empty(self) -> bool:
        return not (self.categories or self.advertisers or self.domains)

    def merged(self, other: BrandControls) -> BrandControls:
        """Both sets of refusals (a publisher's own and an OpenRTB request's ``bcat`` / ``badv``)."""
        return BrandControls(self.categories | other.categories, self.advertisers | other.advertisers,
                             self.domains | other.domains)

    def allows(self, ad: Ad, categories: AdCategories) -> bool:
        if ad.advertiser_id in self.advertisers:
            return False
        if self.domains and domain_blocked(ad_domain(ad.landing_url), self.domains):
            return False
        return not (self.categories and self.categories.intersection(categories.of(ad)))
