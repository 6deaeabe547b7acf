"""Screenshot a running demo's article (docs/demo-article.png) with Debian's chromium.

    admatch demo &            # then:
    python scripts/demo_screenshot.py http://127.0.0.1:8000/demo/article/ev-sales docs/demo-article.png
"""

from __future__ import annotations

import sys

from playwright.sync_api import sync_playwright

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"


def main(url: str, out: str, chromium: str = "/usr/bin/chromium") -> None:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = b.new_context(user_agent=UA, viewport={"width": 1200, "height": 1000}, locale="zh-CN").new_page()
        page.goto(url)
        page.wait_for_selector("[data-admatch-ad]")
        page.wait_for_timeout(500)
        page.screenshot(path=out, clip={"x": 0, "y": 0, "width": 1200, "height": 1000})
        b.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
