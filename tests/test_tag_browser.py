"""The ad tag in a real browser: Debian's headless Chromium driven by Playwright against a real
``admatch serve`` on loopback with the demo catalog and articles (``admatch demo --no-serve``).

Skipped, saying why, when Playwright or the chromium binary is missing (CI installs both:
.ci/run). Playwright drives the system browser through ``executable_path``; it downloads nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.demo.loader import DEMO_PUBLISHER_KEY, demo_catalog
from tests.servers import demo_served, static_site

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'")
CHROMIUM = os.environ.get("ADMATCH_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(f"browser tests skipped: no chromium at {CHROMIUM} "
                "(apt-get install chromium chromium-driver fonts-noto-cjk)", allow_module_level=True)

ADMIN_KEY = "browser-test-admin-key"
# A reader's browser: headless Chromium says "HeadlessChrome", which the click rules count as a bot.
READER_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/126.0.0.0 Safari/537.36")
MARKUP_TITLE = "<img src=x onerror=alert(1)><script>alert(2)</script>"
ADVERTISER_PAGE = "<!doctype html><meta charset=utf-8><title>advertiser</title><h1>广告主落地页</h1>"


@dataclass
class Server:
    base: str
    data_dir: Path

    def get(self, path: str, key: str = ADMIN_KEY) -> Any:
        r = httpx.get(self.base + path, headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    def post(self, path: str, body: dict[str, Any], key: str = ADMIN_KEY) -> Any:
        r = httpx.post(self.base + path, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert r.status_code == 201, r.text
        return r.json()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with demo_served(ADMIN_KEY, "admatch-browser-") as (base, data):
        yield Server(base, data)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(user_agent=READER_UA, viewport={"width": 1280, "height": 900}, locale="zh-CN")
    pg = ctx.new_page()
    yield pg
    ctx.close()


def shown_ads(pg: Any, server: Server, slug: str) -> list[dict[str, Any]]:
    pg.goto(f"{server.base}/demo/article/{slug}")
    pg.wait_for_function("document.querySelectorAll('[data-admatch-slot]')[0].querySelector('[data-admatch-ad]') "
                         "&& document.querySelectorAll('[data-admatch-slot]')[1].querySelector('[data-admatch-ad]')",
                         timeout=15_000)
    return list(pg.eval_on_selector_all("[data-admatch-slot]", """slots => slots.flatMap((s, i) =>
        [...s.querySelectorAll('[data-admatch-ad]')].map(ad => {
            const a = ad.querySelector('a');
            return {slot: i, label: ad.querySelector('[data-admatch-label]').textContent, title: a.textContent,
                    href: a.href, rel: a.rel};
        }))"""))


def test_demo_article_shows_labelled_ads_in_both_slots(page: Any, server: Server) -> None:
    """Both slots of the Simplified demo article fill with ads labelled 广告 that link through the click URL."""
    ads = shown_ads(page, server, "ev-sales")
    assert {a["slot"] for a in ads} == {0, 1}
    assert all(a["label"] == "广告" for a in ads)
    assert all(a["rel"] == "sponsored noopener" and a["href"].startswith(server.base + "/v1/click/") for a in ads)
    titles = {ad["title"] for adv in demo_catalog()["advertisers"] for c in adv["campaigns"] for ad in c["ads"]}
    assert all(a["title"] in titles for a in ads)
    assert page.evaluate("document.cookie") == "" and page.evaluate("localStorage.length") == 0


def test_traditional_article_gets_the_same_ads(page: Any, server: Server) -> None:
    """The same article in Traditional characters gets the same ads in the same slots."""
    simplified = [(a["slot"], a["title"]) for a in shown_ads(page, server, "ev-sales")]
    traditional = [(a["slot"], a["title"]) for a in shown_ads(page, server, "ev-sales-hant")]
    assert traditional == simplified


@pytest.fixture(scope="module")
def advertiser_site(server: Server) -> Iterator[str]:
    """Another web server on loopback, an origin the demo site token does not list: /article is
    the demo article with the tag (loaded from admatch), every other path the advertiser's page."""
    article = httpx.get(server.base + "/demo/article/ev-sales").text.replace(
        'src="/v1/tag.js"', f'src="{server.base}/v1/tag.js"')

    with static_site(lambda path: article if path.startswith("/article") else ADVERTISER_PAGE) as base:
        yield base


def new_ad(server: Server, name: str, title: str, landing: str, bid_fen: int) -> str:
    """A new advertiser's ad for the demo article's words (it serves once the catalog feed has it);
    returns its campaign id."""
    key = server.post("/v1/advertisers", {"name": name})["api_key"]
    cmp = server.post("/v1/campaigns", {"name": name}, key=key)
    server.post(f"/v1/campaigns/{cmp['id']}/ads", {
        "title": title, "landing_url": landing, "bid_fen": bid_fen,
        "keywords": ["新能源汽车", "续航", "充电桩", "纯电", "试驾", "4s店"]}, key=key)
    return str(cmp["id"])


def ads_until(pg: Any, server: Server, title: str) -> list[dict[str, Any]]:
    """The demo article's ads, reloaded until one is titled ``title`` (a new ad serves within a
    catalog-feed interval) or 10 s pass."""
    deadline = time.monotonic() + 10
    while True:
        ads = shown_ads(pg, server, "ev-sales")
        if any(a["title"] == title for a in ads) or time.monotonic() > deadline:
            return ads
        time.sleep(0.5)


def test_click_lands_on_the_advertiser_page_and_is_charged_once(page: Any, server: Server,
                                                                advertiser_site: str) -> None:
    """A click goes through the 302 to the advertiser's page (its URL plus the click id); clicking it again charges nothing more."""
    title, landing = "驰骋新能源试驾节，到店有礼", advertiser_site + "/landing?from=admatch"
    cid = new_ad(server, "驰骋汽车", title, landing, 20_000)
    ad = next(a for a in ads_until(page, server, title) if a["title"] == title)
    time.sleep(1.2)  # a person reads before clicking: sooner is too_fast
    with page.expect_navigation():
        page.get_by_text(title, exact=True).click()
    # the landing URL, with the click id appended for conversion attribution (admatch_click=<impression>.<campaign>)
    assert page.url.startswith(landing + "&admatch_click=") and page.url.endswith("." + cid)
    assert page.locator("h1").text_content() == "广告主落地页"
    redirect = page.context.request.get(ad["href"], max_redirects=0)
    assert redirect.status == 302 and redirect.headers["location"] == page.url
    report = server.get(f"/v1/reports/campaigns/{cid}")["totals"]
    assert report["clicks"] == 1 and report["spend_fen"] > 0
    assert report["invalid_clicks"] == {"duplicate": 1}  # the second request on the same impression


def test_ad_titled_with_markup_shows_it_as_text_and_runs_no_script(page: Any, server: Server) -> None:
    """An ad whose title is HTML shows those characters; no element is made and no script runs."""
    new_ad(server, "标记测试", MARKUP_TITLE, "https://example.com/xss", 50_000)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    assert MARKUP_TITLE in [a["title"] for a in ads_until(page, server, MARKUP_TITLE)]
    assert page.locator("[data-admatch-slot] img, [data-admatch-slot] script").count() == 0
    page.wait_for_timeout(500)
    assert dialogs == []


def _publisher_views(server: Server) -> int:
    return int(server.get("/v1/reports/publishers/demo-news", key=DEMO_PUBLISHER_KEY)["totals"]["viewable_impressions"])


def test_scrolling_an_ad_into_view_for_a_second_adds_one_viewable_impression(browser: Any, server: Server) -> None:
    """The in-article ad, below the fold, counts one viewable impression once it has been in view for 1 s."""
    ctx = browser.new_context(user_agent=READER_UA, viewport={"width": 1280, "height": 420})
    try:
        pg = ctx.new_page()
        shown_ads(pg, server, "ev-sales")
        ad = pg.locator("[data-admatch-slot]").first.locator("[data-admatch-ad]").first
        assert ad.bounding_box()["y"] > 420  # below the fold
        pg.wait_for_timeout(2500)  # the ads in view from the start are counted by now
        v0 = _publisher_views(server)
        ad.scroll_into_view_if_needed()
        pg.wait_for_timeout(400)
        assert _publisher_views(server) == v0  # in view for less than a second: not yet
        deadline = time.monotonic() + 5
        while _publisher_views(server) == v0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _publisher_views(server) == v0 + 1
        pg.wait_for_timeout(1500)
        assert _publisher_views(server) == v0 + 1  # once only
    finally:
        ctx.close()


def test_page_on_an_unregistered_origin_gets_no_ads_and_the_console_says_why(page: Any, server: Server,
                                                                            advertiser_site: str) -> None:
    """A page on an origin the site token does not list shows no ads; the console names the origin."""
    messages: list[str] = []
    page.on("console", lambda m: messages.append(m.text))
    page.goto(advertiser_site + "/article")
    page.wait_for_function("window.__admatchTag")
    deadline = time.monotonic() + 10
    while not any(m.startswith("admatch:") for m in messages) and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert page.locator("[data-admatch-ad]").count() == 0
    said = [m for m in messages if m.startswith("admatch:")]
    assert said and advertiser_site in said[0] and "not registered" in said[0], json.dumps(messages)
