"""The web console at /console/: advertisers, publishers and reviewers in the browser, in Chinese
(English switch), on the service's own REST API (see service/console/api.py).

``install(app)`` adds its pages, its static files (the console's CSS and script, the vendored
Apache ECharts) and the handlers that turn a missing session, a refused form and an API error into
pages.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from service.console.api import ApiError
from service.console.web import CsrfRefused, SignInNeeded, WrongRole, redirect, render, translator

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    from service.console.routes import admin, advertiser, auth, publisher, reports, upload

    for module in (auth, advertiser, reports, upload, publisher, admin):
        app.include_router(module.router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")

    @app.exception_handler(SignInNeeded)
    async def sign_in(request: Request, exc: SignInNeeded) -> RedirectResponse:
        return redirect("/console/login?next=" + quote(exc.next_path, safe="/"))

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, exc: CsrfRefused) -> HTMLResponse:
        t = translator(request)
        return render(request, "error.html", None, 403, title=t("error.csrf_title"), message=t("error.csrf"))

    @app.exception_handler(WrongRole)
    async def wrong_role(request: Request, exc: WrongRole) -> HTMLResponse:
        t = translator(request)
        return render(request, "error.html", None, 403, title=t("error.role_title"), message=t("error.role"))

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> HTMLResponse:
        t = translator(request)
        status = exc.status if 400 <= exc.status < 500 else 502
        return render(request, "error.html", None, status, title=t("error.api_title", status=exc.status),
                      message=exc.detail)
