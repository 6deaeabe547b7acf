"""Pure rules of publisher brand controls (matching/brand.py) and web origins (matching/origins.py)."""

from __future__ import annotations

import pytest

from matching.brand import AdCategories, BrandControls, ad_domain, domain_blocked, normalise_domain
from matching.categories import CategoryClassifier
from matching.origins import normalise_origin, request_origin
from matching.types import Ad


def ad(**kw: object) -> Ad:
    fields: dict[str, object] = {"id": "a1", "campaign_id": "c1", "advertiser_id": "adv1", "title": "纯电续航650公里",
                                 "keywords": ("新能源汽车", "纯电", "续航"), "bid_fen": 100,
                                 "landing_url": "https://www.Shop.Example.com/x?y=1"}
    fields.update(kw)
    return Ad(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("url", "domain"), [
    ("https://www.Shop.Example.com/x", "shop.example.com"), ("http://example.cn:8080/", "example.cn"),
    ("https://www.example.org.", "example.org"), ("not a url", ""),
])
def test_ad_domain_is_the_landing_host_without_www(url: str, domain: str) -> None:
    assert ad_domain(url) == domain


@pytest.mark.parametrize(("domain", "blocked"), [
    ("example.com", True), ("shop.example.com", True), ("a.b.example.com", True),
    ("badexample.com", False), ("example.com.cn", False), ("", False),
])
def test_blocking_a_domain_blocks_its_subdomains_only(domain: str, blocked: bool) -> None:
    assert domain_blocked(domain, frozenset({"example.com"})) is blocked


def test_domains_are_normalised_as_publishers_write_them() -> None:
    assert normalise_domain(" https://WWW.Example.com/path ") == "example.com"
    assert BrandControls.of(domains=["WWW.example.com", ""]).domains == frozenset({"example.com"})


def test_controls_refuse_by_advertiser_domain_and_category() -> None:
    cats = AdCategories(CategoryClassifier())
    a = ad()
    assert "1" in cats.of(a)  # 汽车 (tier 1), the parent of what its keywords say
    assert BrandControls().allows(a, cats) and BrandControls().empty
    assert not BrandControls.of(advertisers=["adv1"]).allows(a, cats)
    assert not BrandControls.of(domains=["example.com"]).allows(a, cats)
    assert not BrandControls.of(categories=["1"]).allows(a, cats)
    assert BrandControls.of(categories=["680"], advertisers=["adv2"], domains=["example.net"]).allows(a, cats)
    merged = BrandControls.of(advertisers=["adv2"]).merged(BrandControls.of(categories=["1"]))
    assert not merged.allows(a, cats) and merged.advertisers == frozenset({"adv2"})


def test_declared_target_categories_count_as_the_ads() -> None:
    cats = AdCategories(CategoryClassifier())
    assert "680" in cats.of(ad(id="a2", target_categories=("680",)))


@pytest.mark.parametrize(("text", "origin"), [
    ("https://News.Example.com", "https://news.example.com"), ("https://news.example.com:443/", "https://news.example.com"),
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000"), ("http://localhost:80", "http://localhost"),
])
def test_origins_have_one_spelling(text: str, origin: str) -> None:
    assert normalise_origin(text) == origin


@pytest.mark.parametrize("text", ["news.example.com", "ftp://x.com", "https://x.com/path", "https://u@x.com",
                                  "https://x.com?q=1", "https://x.com:99999", "https://"])
def test_what_is_not_an_origin_is_refused_saying_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match="https://news.example.com"):
        normalise_origin(text)


def test_request_origin_prefers_origin_then_referer() -> None:
    assert request_origin("https://a.com", "https://b.com/x") == "https://a.com"
    assert request_origin(None, "https://b.com:443/x?y#z") == "https://b.com"
    assert request_origin("null", "http://b.com:81/") == "http://b.com:81"
    assert request_origin(None, None) is None and request_origin("null", "about:blank") is None
