"""The console in a real browser: Debian's headless Chromium (Playwright) against a real
``admatch serve`` with the demo catalog, as an advertiser, a reviewer and a reader would use it.

Skipped, saying why, when Playwright or the chromium binary is missing (CI installs both: .ci/run).
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import demo_served, static_site

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'")
CHROMIUM = os.environ.get("ADMATCH_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(f"browser tests skipped: no chromium at {CHROMIUM} "
                "(apt-get install chromium chromium-driver fonts-noto-cjk)", allow_module_level=True)

ADMIN_KEY = "console-browser-admin-key"
READER_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/126.0.0.0 Safari/537.36")
TITLE = "驰骋新能源试驾节 国家级品质"  # 国家级: held for review (广告法 Art. 9(3))
MARKUP = "<img src=x onerror=alert(1)>试驾"
KEYWORDS = "新能源汽车|续航|充电桩|纯电|试驾|4s店"
SCREENSHOTS = os.environ.get("ADMATCH_SCREENSHOT_DIR")  # scripts/console_screenshots.sh sets it


class Api:
    def __init__(self, base: str) -> None:
        self.base = base

    def call(self, method: str, path: str, key: str = ADMIN_KEY, **kw: Any) -> httpx.Response:
        return httpx.request(method, self.base + path, headers={"Authorization": f"Bearer {key}"}, timeout=15, **kw)


@pytest.fixture(scope="module")
def server() -> Iterator[Api]:
    with demo_served(ADMIN_KEY, "admatch-console-") as (base, _data):
        yield Api(base)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def _context(browser: Any, **kw: Any) -> Any:
    return browser.new_context(user_agent=READER_UA, viewport={"width": 1280, "height": 900}, locale="zh-CN",
                               accept_downloads=True, **kw)


def sign_in(browser: Any, server: Api, key: str) -> Any:
    page = _context(browser).new_page()
    page.goto(server.base + "/console/")
    page.get_by_label("API 密钥").fill(key)
    page.get_by_role("button", name="登录").click()
    page.wait_for_load_state()
    return page


@pytest.fixture(scope="module")
def advertiser(server: Api) -> dict[str, str]:
    key = server.call("POST", "/v1/advertisers", json={"name": "驰骋汽车"}).json()["api_key"]
    cid = server.call("POST", "/v1/campaigns", key, json={"name": "试驾节"}).json()["id"]
    return {"key": key, "campaign": cid}


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["title", "landing_url", "keywords", "bid_fen"])
    w.writerows(rows)
    return out.getvalue().encode("utf-8")


class Site:
    """Another web server on loopback (another origin): the advertiser's landing page, and at
    /forge a page that posts a form to the console."""

    def __init__(self, base: str, pages: dict[str, str]) -> None:
        self.base = base
        self.pages = pages


@pytest.fixture(scope="module")
def landing_site() -> Iterator[Site]:
    pages: dict[str, str] = {"/landing": "<!doctype html><meta charset=utf-8><title>landing</title><h1>落地页</h1>"}

    with static_site(lambda path: pages.get(path.split("?")[0], "")) as base:
        yield Site(base, pages)


def _shot(page: Any, name: str) -> None:
    if SCREENSHOTS:  # tall enough for the charts by day and by hour
        page.set_viewport_size({"width": 1280, "height": 1560})
        page.wait_for_timeout(500)
        page.screenshot(path=str(Path(SCREENSHOTS) / name), full_page=False)


def test_advertiser_upload_review_serve_click_report(browser: Any, server: Api, advertiser: dict[str, str],
                                                     landing_site: Site) -> None:
    """The whole path a person takes: a CSV with a bad row, fixed; an ad held for review with its reason;
    approved by a reviewer; shown on the demo article; clicked; counted in the advertiser's chart; exported."""
    cid, key = advertiser["campaign"], advertiser["key"]
    page = sign_in(browser, server, key)
    assert page.url.endswith("/console/campaigns")
    page.goto(f"{server.base}/console/upload/{cid}")
    with tempfile.TemporaryDirectory() as tmp:
        bad, good = Path(tmp, "ads.csv"), Path(tmp, "ads-fixed.csv")
        landing = landing_site.base + "/landing"
        bad.write_bytes(_csv([[TITLE, landing, KEYWORDS, "20000"], ["第二条", landing, "试驾", "二十"]]))
        good.write_bytes(_csv([[TITLE, landing, KEYWORDS, "20000"], ["第二条", landing, "试驾", "200"]]))
        page.set_input_files("#file", str(bad))
        page.get_by_role("button", name="检查文件").click()
        page.wait_for_selector("#bad-rows")
        row = page.locator('#bad-rows tr[data-line="3"]')
        assert row.count() == 1 and "bid_fen" in row.inner_text()
        assert page.locator("#bad-rows tbody tr").count() == 1  # only the bad row is named
        page.set_input_files("#file", str(good))
        page.get_by_role("button", name="检查文件").click()
        page.wait_for_selector("#preview-rows")
    held = page.locator('#preview-rows tr[data-line="2"]').inner_text()
    assert "待审核" in held and "国家级" in held
    assert server.call("GET", f"/v1/campaigns/{cid}/ads", key).json() == []  # the check stored nothing
    page.get_by_role("button", name="保存全部 2 条广告").click()
    page.wait_for_selector("#upload-stored")
    assert "国家级" in page.locator("#held-rows").inner_text()

    reviewer = sign_in(browser, server, ADMIN_KEY)
    assert reviewer.url.endswith("/console/review")
    item = reviewer.locator(".review-item", has_text=TITLE)
    assert "国家级" in item.inner_text()
    item.get_by_role("button", name="通过").click()
    reviewer.wait_for_load_state()
    assert reviewer.locator(".review-item", has_text=TITLE).count() == 0

    reader = _context(browser).new_page()
    deadline = time.monotonic() + 15
    while True:
        reader.goto(f"{server.base}/demo/article/ev-sales")
        reader.wait_for_selector("[data-admatch-ad]", timeout=15_000)
        if reader.get_by_text(TITLE, exact=True).count() or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert reader.get_by_text(TITLE, exact=True).count() == 1
    time.sleep(1.2)  # a person reads before clicking
    with reader.expect_navigation():
        reader.get_by_text(TITLE, exact=True).click()
    assert reader.url.startswith(landing_site.base + "/landing")

    page.goto(f"{server.base}/console/campaigns/{cid}/report")
    page.wait_for_selector('[data-chart="daily"][data-drawn="1"] svg')
    api = server.call("GET", f"/v1/reports/campaigns/{cid}", key).json()["totals"]
    assert api["clicks"] == 1 and api["spend_fen"] > 0
    assert page.locator('[data-kpi="clicks"]').inner_text() == "1"
    assert page.locator('[data-kpi="spend_fen"]').get_attribute("data-fen") == str(api["spend_fen"])
    with page.expect_download() as dl:
        page.locator("#export-day").click()
    exported = Path(dl.value.path()).read_bytes()
    assert exported == server.call("GET", f"/v1/reports/campaigns/{cid}", key, params={"format": "csv"}).content
    page.context.close()
    reviewer.context.close()
    reader.context.close()


def test_cross_site_form_post_is_refused(browser: Any, server: Api, advertiser: dict[str, str],
                                         landing_site: Site) -> None:
    """Pages elsewhere auto-submit a form to the console in a signed-in browser; nothing is created.
    From another site (localhost, the console being on 127.0.0.1) the SameSite=Strict cookie stays
    home and the post is sent to sign in; from another origin of the same site (another port) the
    cookie goes along and the origin check refuses it (403); from the console's own origin without
    the CSRF token, 403."""
    page = sign_in(browser, server, advertiser["key"])
    before = len(server.call("GET", "/v1/campaigns", advertiser["key"]).json())
    landing_site.pages["/forge"] = (
        f'<!doctype html><meta charset=utf-8><title>forge</title><form id=f method=post '
        f'action="{server.base}/console/campaigns"><input name=name value="跨站伪造"></form>'
        '<script>document.getElementById("f").submit()</script>')
    page.goto(landing_site.base.replace("127.0.0.1", "localhost") + "/forge")
    page.wait_for_url(server.base + "/console/login**")
    assert page.url == server.base + "/console/login?next=/console/campaigns"
    with page.expect_response(server.base + "/console/campaigns") as answer:
        page.goto(landing_site.base + "/forge")
    assert answer.value.status == 403
    assert "请求被拒绝" in page.content()
    page.goto(server.base + "/console/campaigns")
    status = page.evaluate("""async base => (await fetch(base + '/console/campaigns', {method: 'POST',
        headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'name=no-token'})).status""",
                           server.base)
    assert status == 403
    assert len(server.call("GET", "/v1/campaigns", advertiser["key"]).json()) == before
    page.context.close()


def test_ad_title_with_markup_is_text_in_the_console(browser: Any, server: Api, advertiser: dict[str, str]) -> None:
    cid, key = advertiser["campaign"], advertiser["key"]
    r = server.call("POST", f"/v1/campaigns/{cid}/ads", key, json={
        "title": MARKUP, "landing_url": "https://example.com/x", "keywords": ["试驾"], "bid_fen": 100})
    assert r.status_code == 201, r.text
    page = sign_in(browser, server, key)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{server.base}/console/campaigns/{cid}")
    assert page.get_by_text(MARKUP, exact=True).count() == 1
    assert page.locator("table.ads img").count() == 0
    page.wait_for_timeout(300)
    assert dialogs == []
    page.context.close()


def _axe(page: Any) -> list[dict[str, Any]]:
    from axe_playwright_python.sync_playwright import Axe
    results = Axe().run(page)
    assert results.response["passes"], "axe ran no rule"  # the check did run on the page
    return [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


def test_main_pages_have_no_serious_accessibility_violations(browser: Any, server: Api,
                                                            advertiser: dict[str, str]) -> None:
    from service.demo.loader import DEMO_PUBLISHER_KEY
    cid = advertiser["campaign"]
    found: dict[str, list[str]] = {}
    login = _context(browser).new_page()
    login.goto(server.base + "/console/login")
    found["login"] = [v["id"] for v in _axe(login)]
    login.context.close()
    for key, paths in ((advertiser["key"], ["/console/campaigns", f"/console/campaigns/{cid}",
                                            f"/console/campaigns/{cid}/report", f"/console/upload/{cid}",
                                            "/console/preview"]),
                       (DEMO_PUBLISHER_KEY, ["/console/earnings", "/console/sites"]),
                       (ADMIN_KEY, ["/console/review", "/console/admin"])):
        page = sign_in(browser, server, key)
        for path in paths:
            page.goto(server.base + path)
            page.wait_for_load_state("networkidle")
            found[path] = [f"{v['id']}: {v['nodes'][0]['target']}" for v in _axe(page)]
        page.context.close()
    assert {p: v for p, v in found.items() if v} == {}


def test_publisher_earnings_chart_has_the_demo_day(browser: Any, server: Api) -> None:
    """The demo replays a day of traffic at start: a publisher signs in to charts with data."""
    from service.demo.loader import DEMO_PUBLISHER_KEY
    page = sign_in(browser, server, DEMO_PUBLISHER_KEY)
    assert page.url.endswith("/console/earnings")
    page.wait_for_selector('[data-chart="hourly"][data-drawn="1"] svg')
    assert int(page.locator('[data-kpi="impressions"]').inner_text()) > 0
    assert int(page.locator('[data-kpi="earnings_fen"]').get_attribute("data-fen")) > 0
    _shot(page, "console-earnings.png")
    page.context.close()


def test_demo_advertiser_report_has_the_demo_day(browser: Any, server: Api) -> None:
    """A demo advertiser signs in to a campaign report with a day of clicks and spend, by day and by hour."""
    from service.demo.loader import advertiser_key, demo_catalog
    adv = demo_catalog()["advertisers"][0]
    cid = adv["campaigns"][0]["id"]
    page = sign_in(browser, server, advertiser_key(adv["id"]))
    page.goto(f"{server.base}/console/campaigns/{cid}/report")
    page.wait_for_selector('[data-chart="hourly"][data-drawn="1"] svg')
    totals = server.call("GET", f"/v1/reports/campaigns/{cid}", advertiser_key(adv["id"])).json()["totals"]
    assert totals["clicks"] > 0 and totals["spend_fen"] > 0
    assert page.locator('[data-kpi="clicks"]').inner_text() == str(totals["clicks"])
    _shot(page, "console-report.png")
    page.context.close()
