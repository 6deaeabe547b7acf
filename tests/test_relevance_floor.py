"""The relevance floor at its boundary, on the demo catalog served with default settings: a page
scoring just above the floor gets its best ad, one scoring just below gets none.

The pages are one real-estate word followed by a growing share of text about nothing any
advertiser bought, so their best score falls a little with each step; each page's score comes
from the served index's own ranking with no floor (what is tested is where the service cuts).
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from index import artifact
from matching.analyze import make_page
from matching.matcher import MatchConfig, Matcher
from service.demo.loader import DEMO_PUBLISHER, DEMO_PUBLISHER_KEY
from tests.conftest import auth
from tests.helpers import match

FLOOR = 0.05  # ADMATCH_RELEVANCE_FLOOR's documented default
NEUTRAL = ("清晨的公园里，老人们在湖边打太极拳。柳树发芽了，燕子从南方飞回来。孩子们在草地上放风筝，"
           "笑声传得很远。河边有人钓鱼，也有人拉二胡。傍晚的晚霞把天空染成了橘红色。"
           "秋天到了，树叶慢慢变黄，一片一片落在小路上。山上的枫叶红得像火。"
           "冬天下了第一场雪，屋檐上挂着冰凌，小朋友堆起了雪人。")


def pages() -> list[dict[str, str]]:
    """房贷 followed by ever more of the neutral text, cut after every few characters."""
    return [{"text": "房贷。" + NEUTRAL[:n]} for n in range(0, len(NEUTRAL) + 1, 3)]


def served(client: TestClient, page: dict[str, Any]) -> list[str]:
    r = match(client, auth(DEMO_PUBLISHER_KEY), DEMO_PUBLISHER, page, slots=1)
    assert r.status_code == 200, r.text
    return [a["ad_id"] for a in r.json()["ads"]]


def test_pages_just_above_and_just_below_the_floor(demo: TestClient) -> None:
    """The page scoring just above 0.05 gets its best ad, the page scoring just below gets no ad."""
    _, catalog = artifact.load(demo.app.state.ctx.settings.index_root)  # the version the app serves
    unfloored = Matcher(catalog, MatchConfig(floor=0.0))
    scored = []
    for page in pages():
        [best] = unfloored.rank(unfloored.analyze(make_page(text=page["text"])), 1)
        scored.append((best.score, best.ad.id, page))
    above = min((s for s in scored if s[0] >= FLOOR), key=lambda s: s[0])
    below = max((s for s in scored if s[0] < FLOOR), key=lambda s: s[0])
    # Boundary pages: within a quarter of the floor on either side (halving it would show `below`).
    assert FLOOR <= above[0] < 1.25 * FLOOR and 0.75 * FLOOR < below[0] < FLOOR, (above[:2], below[:2])
    assert served(demo, above[2]) == [above[1]]
    assert served(demo, below[2]) == []
