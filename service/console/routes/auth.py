"""Sign in (an API key for a session cookie), sign out, the language switch, the console's home."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from service.console import i18n
from service.console.api import Api, ApiError
from service.console.session import COOKIE, Session
from service.console.web import HOME, CsrfRefused, current, redirect, render, safe_next, same_origin, sessions

router = APIRouter(prefix="/console", include_in_schema=False)
LOGIN_COOKIE = "admatch_login"  # the sign-in form's CSRF token (double submit: cookie and field)
ROLES = ("advertiser", "publisher", "admin")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


@router.get("/")
async def home(request: Request) -> RedirectResponse:
    s = await sessions(request).open(request.cookies.get(COOKIE))
    return redirect(HOME[s.role] if s is not None else "/console/login")


def _login_page(request: Request, next_path: str, error: str | None = None, status_code: int = 200) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    r = render(request, "login.html", None, status_code, csrf=token, next=safe_next(next_path), error=error)
    r.set_cookie(LOGIN_COOKIE, token, max_age=3600, httponly=True, samesite="strict", secure=_secure(request),
                 path="/console/")
    return r


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/console/") -> HTMLResponse:  # noqa: A002
    return _login_page(request, next)


@router.post("/login", response_model=None)
async def login(request: Request, api_key: Annotated[str, Form(max_length=500)] = "",
                csrf: Annotated[str, Form(max_length=100)] = "",
                next: Annotated[str, Form(max_length=2000)] = "/console/") -> HTMLResponse | RedirectResponse:  # noqa: A002
    expected = request.cookies.get(LOGIN_COOKIE) or ""
    if not same_origin(request) or not expected or not hmac.compare_digest(expected.encode(), csrf.encode()):
        raise CsrfRefused()
    t = i18n.Translator(i18n.lang_of(request.cookies.get(i18n.COOKIE)))
    key = api_key.strip()
    if not key:
        return _login_page(request, next, t("login.missing_key"), 422)
    try:
        async with Api(request, key) as api:
            me = await api.get("/v1/me")
    except ApiError as e:
        if e.status == 401:
            return _login_page(request, next, t("login.bad_key"), 401)
        raise
    if me.get("role") not in ROLES:
        return _login_page(request, next, t("login.no_console"), 403)
    _session, cookie = await sessions(request).create(api_key=key, role=me["role"], principal_id=me["id"],
                                                      name=me.get("name") or me["id"])
    target = safe_next(next)
    r = redirect(HOME[me["role"]] if target == "/console/" else target)
    r.set_cookie(COOKIE, cookie, max_age=request.app.state.ctx.settings.console_session_seconds, httponly=True,
                 samesite="strict", secure=_secure(request), path="/console/")
    r.delete_cookie(LOGIN_COOKIE, path="/console/")
    return r


@router.post("/logout")
async def logout(request: Request, s: Annotated[Session, Depends(current)],
                 csrf: Annotated[str, Form(max_length=100)] = "") -> RedirectResponse:
    if not same_origin(request) or not s.csrf_ok(csrf):
        raise CsrfRefused()
    await sessions(request).close(s)
    r = redirect("/console/login")
    r.delete_cookie(COOKIE, path="/console/")
    return r


@router.get("/lang/{code}")
async def switch_language(request: Request, code: str, next: str = "/console/") -> RedirectResponse:  # noqa: A002
    r = redirect(safe_next(next))
    r.set_cookie(i18n.COOKIE, i18n.lang_of(code), max_age=365 * 86400, samesite="lax", secure=_secure(request),
                 path="/console/")
    return r
