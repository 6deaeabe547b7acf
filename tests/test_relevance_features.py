"""Match types, negative keywords, category targeting, sensitive pages and explanations, end to
end through the HTTP API on real Redis."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from matching.analyze import make_page
from matching.match_types import MatchType, exact_form, keyword_rules, parse_keyword, render_keyword
from tests.conftest import ADMIN_KEY, auth

HOUSING = {"title": "楼市新政", "text": "本市新开楼盘首付两成，房贷利率下调，购房者关注学区房。"}
QUAKE = {"title": "地震造成重大伤亡", "text": "昨夜发生强烈地震，地震造成数百人死亡、上千人受伤，救援队伍连夜搜救遇难者，房屋倒塌。"}


def test_parse_keyword_reads_match_type_marks() -> None:
    """[kw] is exact, "kw" and “kw” are phrase, a bare keyword is broad."""
    assert parse_keyword("[学区房]") == ("学区房", MatchType.EXACT)
    assert parse_keyword('"首付"') == ("首付", MatchType.PHRASE)
    assert parse_keyword("“房贷”") == ("房贷", MatchType.PHRASE)
    assert parse_keyword("楼盘") == ("楼盘", MatchType.BROAD)


def test_match_type_marks_need_both_ends_and_a_keyword_inside() -> None:
    """A mark needs its opening and closing character around at least one character; render_keyword writes what
    parse_keyword reads."""
    assert parse_keyword("[a]") == ("a", MatchType.EXACT)
    assert parse_keyword('"a"') == ("a", MatchType.PHRASE)
    for raw in ("[]", '""', "学区房]", "[学区房", '学区房"', '"学区房'):
        assert parse_keyword(raw) == (raw, MatchType.BROAD), raw
    assert [render_keyword("学区房", t) for t in MatchType] == ["[学区房]", '"学区房"', "学区房"]
    for t in MatchType:
        assert parse_keyword(render_keyword("学区房", t)) == ("学区房", t)


def test_keyword_rules_sort_keywords_by_declared_type() -> None:
    """Exact keywords are compared in NFKC lower case, phrase keywords normalised; an ad has broad matching
    only when one of its keywords is neither exact nor phrase."""
    assert exact_form("ＳＵＶ学区房") == "suv学区房"
    rules = keyword_rules(["SUV", "首付", "楼盘"], [("SUV", "exact"), ("首付", "phrase")])
    assert rules.exact == frozenset({"suv"}) and rules.phrase == frozenset({"首付"}) and rules.has_broad
    assert rules.types_of(["suv", "首付", "楼盘"]) == ("exact", "phrase", "broad")
    assert not keyword_rules(["SUV", "首付"], [("SUV", "exact"), ("首付", "phrase")]).has_broad


def test_exact_keyword_needs_the_keyword_as_written() -> None:
    """An exact keyword matches the page's own characters, a phrase keyword also its Traditional form."""
    rules = keyword_rules(["学区房"], [("学区房", "exact")])
    assert rules.admits(frozenset(), make_page(text="关注学区房").original)
    assert not rules.admits(frozenset(), make_page(text="關注學區房").original)
    phrase = keyword_rules(["学区房"], [("学区房", "phrase")])
    assert phrase.admits(frozenset({"学区房"}), "")


@pytest.fixture
def world(client: TestClient) -> Callable[..., dict[str, Any]]:
    """A publisher and an advertiser campaign; returns a function that adds ads and builds the index."""
    pub = client.post("/v1/publishers", json={"name": "站", "floor_fen": 1}, headers=auth(ADMIN_KEY)).json()
    adv = client.post("/v1/advertisers", json={"name": "房"}, headers=auth(ADMIN_KEY)).json()
    cmp = client.post("/v1/campaigns", json={"name": "c"}, headers=auth(adv["api_key"])).json()

    def add(ads: list[dict[str, Any]], build_index: Callable[[], Any]) -> dict[str, Any]:
        ids = {}
        for ad in ads:
            r = client.post(f"/v1/campaigns/{cmp['id']}/ads", headers=auth(adv["api_key"]),
                            json={"landing_url": "https://example.com/x", "bid_fen": 100, **ad})
            assert r.status_code == 201, r.text
            ids[ad["title"]] = r.json()["id"]
        build_index()
        client.post("/v1/index/reload", headers=auth(ADMIN_KEY))
        return {"pub": pub, "ids": ids, "adv": adv}
    return add


def match(client: TestClient, w: dict[str, Any], page: dict[str, str], explain: bool = False) -> dict[str, Any]:
    r = client.post("/v1/match" + ("?explain=1" if explain else ""), headers=auth(w["pub"]["api_key"]),
                    json={"publisher_id": w["pub"]["id"], "page": page, "slots": 5})
    assert r.status_code == 200, r.text
    return r.json()


def test_match_types_negatives_and_explanations(client: TestClient, world, build_index) -> None:
    """Exact-only ads need their keyword, negatives exclude, and every ad explains its match."""
    w = world([
        {"title": "学区房", "keywords": ["[学区房]", "楼盘"]},
        {"title": "精确别墅", "keywords": ["[别墅]"]},
        {"title": "烂尾", "keywords": ["楼盘", "首付"], "negative_keywords": ["房贷"]},
    ], build_index)
    body = match(client, w, HOUSING, explain=True)
    shown = {a["title"]: a for a in body["ads"]}
    assert "学区房" in shown
    assert "精确别墅" not in shown  # its only keyword is exact and absent
    assert "烂尾" not in shown  # the page has its negative keyword 房贷
    expl = shown["学区房"]["explanation"]
    assert {"keyword": "学区房", "match_type": "exact"} in expl["matched"]
    assert {"keyword": "楼盘", "match_type": "broad"} in expl["matched"]
    assert set(expl["signals"]) >= {"keyword", "tfidf", "dense"}
    assert body["debug"]["candidates"] and body["page_categories"]
    assert body["page_categories"][0]["name"] == "Real Estate"
    assert match(client, w, HOUSING)["debug"] is None


def test_category_targeting_and_sensitive_pages(client: TestClient, world, build_index) -> None:
    """Targeted ads show in their category (or a subcategory) and only there, excluding ads everywhere else; sensitive pages
    get the opted-in ad and no other."""
    w = world([
        {"title": "只投汽车", "keywords": ["楼盘", "首付"], "target_categories": ["1"]},
        {"title": "只投房产", "keywords": ["楼盘", "首付"], "target_categories": ["441"]},
        {"title": "只投买房", "keywords": ["楼盘", "首付"], "target_categories": ["451"]},
        {"title": "排除房产", "keywords": ["楼盘", "首付"], "exclude_categories": ["441"]},
        {"title": "排除汽车", "keywords": ["楼盘", "首付"], "exclude_categories": ["1"]},
        {"title": "普通", "keywords": ["楼盘", "首付", "房屋"]},
        {"title": "灾害可投", "keywords": ["楼盘", "房屋", "救援"], "allow_sensitive": True},
    ], build_index)
    housing = match(client, w, HOUSING)
    assert {"441", "451"} <= {c["id"] for c in housing["page_categories"]}  # precondition
    shown = {a["title"] for a in housing["ads"]}
    assert {"普通", "只投房产", "只投买房", "排除汽车"} <= shown
    assert "只投汽车" not in shown and "排除房产" not in shown
    quake = match(client, w, QUAKE)
    assert any(c["sensitive"] for c in quake["page_categories"])
    assert [a["title"] for a in quake["ads"]] == ["灾害可投"]


def test_unknown_category_id_is_a_422_naming_the_field(client: TestClient, world, build_index) -> None:
    """An ad targeting an IAB id admatch does not know gets a 422 naming target_categories."""
    w = world([], build_index)
    cmp = client.get("/v1/campaigns", headers=auth(w["adv"]["api_key"])).json()[0]
    r = client.post(f"/v1/campaigns/{cmp['id']}/ads", headers=auth(w["adv"]["api_key"]),
                    json={"title": "x", "landing_url": "https://example.com", "keywords": ["a"], "bid_fen": 5,
                          "target_categories": ["nope"]})
    assert r.status_code == 422
    assert r.json()["fields"][0]["field"].startswith("target_categories")


def test_categories_endpoint_lists_the_taxonomy(client: TestClient) -> None:
    """GET /v1/categories lists IAB nodes with Chinese names, the sensitive ones flagged."""
    cats = client.get("/v1/categories").json()
    by_id = {c["id"]: c for c in cats}
    assert by_id["441"]["name_zh"] and by_id["v9i3On"]["sensitive"]


def test_undecodable_page_cache_entry_is_a_miss(redis_url: str, clean_redis) -> None:  # noqa: ANN001
    """A page-cache entry in another format is treated as a miss, never an error."""
    import asyncio

    import redis.asyncio as aioredis

    from service.serving.page_cache import PREFIX, PageCache

    clean_redis.set(f"{PREFIX}v1:k", '[["ad-1", 0.5, {"keyword": 1}, []]]')

    async def go() -> object:
        r = aioredis.from_url(redis_url, decode_responses=True)
        try:
            return await PageCache(r, local_size=10, ttl_s=60).get("v1", "k", {})
        finally:
            await r.aclose()
    assert asyncio.run(go()) is None
