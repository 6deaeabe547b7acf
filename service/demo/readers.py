"""The simulated readers of the demo's replayed day (service/demo/traffic.py): when they come,
which page they read, who they are and how they click. No I/O; every draw from a given
``random.Random``, so a seed gives the same day.

The day's shape: page views arrive at a rate that follows :data:`DIURNAL` (relative weight per
hour of the day in the billing timezone: quiet at night, a lunch bump, the peak in the evening).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from zoneinfo import ZoneInfo

from matching.text import html_to_text
from service.demo.loader import demo_pages

# Page views by hour of the day (0–23, billing timezone), relative: the evening is six times the small hours.
DIURNAL = (3, 2, 1.5, 1, 1, 1.5, 3, 5, 6, 6.5, 6.5, 7, 8.5, 7.5, 6.5, 6.5, 7, 8, 9, 11, 12.5, 13, 11, 6.5)
# The demo advertiser's page and the demo article are read more, so their campaigns' charts fill up.
PAGE_WEIGHTS = {"page-realty-loan": 3.0, "article-ev-sales": 2.0, "article-ev-sales-hant": 0.6}
ARTICLES = {"article-ev-sales": ("/demo/article/ev-sales", "ev-sales-zh-hans.html"),
            "article-ev-sales-hant": ("/demo/article/ev-sales-hant", "ev-sales-zh-hant.html")}
ARTICLE_SLOTS = 2  # the demo article's two ad slots; the other pages ask for 3, as /v1/match callers do
BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; V2309A) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Mobile Safari/537.36",
)
CRAWLER = "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)"
FARM_IP = "203.0.113.7"  # the click farm's one address (TEST-NET-3)
POSITION = (1.0, 0.7, 0.5)  # how much less a reader clicks the second and third slot


@dataclass(frozen=True, slots=True)
class DemoPage:
    id: str
    title: str
    text: str
    url: str
    slots: int
    weight: float


# A page no demo ad fits: the publisher's fill rate is below 100 %, as on any site.
WEATHER = DemoPage("page-weather", "本周天气：晴到多云，适合户外散步",
                   "今天天气晴朗，微风，适合去公园散步，看看花草树木。周末气温回升，早晚温差较大，"
                   "外出注意适当增减衣物。", "https://demo-news.example/page-weather", 3, 1.5)


def traffic_pages() -> list[DemoPage]:
    """The pages readers read: the demo pages (service/demo/pages.json), the demo article in both
    scripts and :data:`WEATHER`."""
    pages = [DemoPage(p["id"], p["title"], p["text"], f"https://demo-news.example/{p['id']}", 3,
                      PAGE_WEIGHTS.get(p["id"], 1.0)) for p in demo_pages()]
    pages.append(WEATHER)
    for pid, (url, name) in ARTICLES.items():
        doc = html_to_text(resources.files("service.demo").joinpath(f"articles/{name}").read_text("utf-8"))
        pages.append(DemoPage(pid, doc.title, doc.text, url, ARTICLE_SLOTS, PAGE_WEIGHTS[pid]))
    return pages


def visit_times(rng: random.Random, n: int, start: float, end: float, tz: ZoneInfo) -> list[float]:
    """``n`` times in [start, end), sorted, at a rate proportional to :data:`DIURNAL` of their
    local hour (rejection sampling: exactly ``n`` whatever the window)."""
    top = max(DIURNAL)
    out: list[float] = []
    while len(out) < n:
        t = start + rng.random() * (end - start)
        if rng.random() * top < DIURNAL[datetime.fromtimestamp(t, tz).hour]:
            out.append(t)
    return sorted(out)


@dataclass(frozen=True, slots=True)
class Reader:
    ip: str
    user_agent: str
    crawler: bool = False


def reader(rng: random.Random, crawler_share: float) -> Reader:
    if rng.random() < crawler_share:
        return Reader(f"180.76.{rng.randrange(256)}.{rng.randrange(1, 255)}", CRAWLER, crawler=True)
    return Reader(f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}", rng.choice(BROWSERS))


def click_probability(base: float, score: float, slot: int) -> float:
    """A reader's chance to click an ad: more for a more relevant ad, less in a lower slot."""
    return min(0.5, base * (0.4 + min(score, 2.0)) * POSITION[min(slot, len(POSITION) - 1)])


def click_delay(rng: random.Random) -> float:
    """Seconds from the impression to a person's click: mostly 3 to 30 (median 8)."""
    return 1.5 + rng.lognormvariate(math.log(6.5), 0.8)


def conversion_delay(rng: random.Random) -> float:
    """Seconds from a click to its conversion: minutes to hours (median 20 minutes)."""
    return 60 + rng.lognormvariate(math.log(1200), 1.0)


def pick_page(rng: random.Random, pages: list[DemoPage]) -> DemoPage:
    return rng.choices(pages, weights=[p.weight for p in pages])[0]
