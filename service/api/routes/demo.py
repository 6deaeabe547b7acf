"""The demo publisher's pages (``admatch demo``, or ADMATCH_DEMO_PAGES=true): Chinese news articles
carrying the ad tag with two slots, so a newcomer sees ads beside an article in a browser."""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from service.demo.loader import DEMO_SITE_TOKEN
from service.errors import NotFound

router = APIRouter(prefix="/demo", tags=["demo"], include_in_schema=False)

ARTICLES = {"ev-sales": "ev-sales-zh-hans.html", "ev-sales-hant": "ev-sales-zh-hant.html"}
TITLES = {"ev-sales": "新能源汽车下乡再提速（简体）", "ev-sales-hant": "新能源汽車下鄉再提速（繁體）"}


@cache
def article_html(slug: str) -> str:
    raw = resources.files("service.demo").joinpath(f"articles/{ARTICLES[slug]}").read_text("utf-8")
    return raw.replace("{{BASE}}", "").replace("{{SITE}}", DEMO_SITE_TOKEN)


@router.get("/", response_class=HTMLResponse)
async def index() -> HTMLResponse:
    links = "".join(f'<li><a href="/demo/article/{s}">{t}</a></li>' for s, t in TITLES.items())
    return HTMLResponse(f'<!doctype html><meta charset="utf-8"><title>admatch demo</title><ul>{links}</ul>')


@router.get("/article/{slug}", response_class=HTMLResponse)
async def article(slug: str) -> HTMLResponse:
    if slug not in ARTICLES:
        raise NotFound(f"no demo article {slug!r}; try {', '.join('/demo/article/' + s for s in ARTICLES)}")
    return HTMLResponse(article_html(slug), headers={"Cache-Control": "no-cache"})
