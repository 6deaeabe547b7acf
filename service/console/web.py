"""What every console page shares: the signed-in session, CSRF checks, the language, rendering.

Pages are Jinja2 templates with autoescaping on (nothing an advertiser wrote is rendered as markup)
under a Content-Security-Policy that runs only the service's own scripts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from matching.match_types import parse_keyword
from service.console import i18n
from service.console.session import COOKIE, Session, Sessions

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HOME = {"advertiser": "/console/campaigns", "publisher": "/console/earnings", "admin": "/console/review"}


class SignInNeeded(Exception):
    """No valid session: the handler answers with a redirect to the sign-in page."""

    def __init__(self, next_path: str = "/console/") -> None:
        self.next_path = next_path


class CsrfRefused(Exception):
    """A form post without this session's CSRF token, or from another origin: 403."""


class WrongRole(Exception):
    """A page of another role (an advertiser opening the review queue): 403."""


def sessions(request: Request) -> Sessions:
    c = request.app.state.ctx
    return Sessions(c.redis, c.settings.console_session_seconds)


def safe_next(path: str | None) -> str:
    """Only a path of the console itself, so the sign-in page is no open redirect."""
    if not path or not path.startswith("/console/") or path.startswith("//") or urlsplit(path).netloc:
        return "/console/"
    return path


async def current(request: Request) -> Session:
    s = await sessions(request).open(request.cookies.get(COOKIE))
    if s is None:
        raise SignInNeeded(request.url.path)
    return s


def role(*roles: str):  # noqa: ANN201 - FastAPI dependency factory
    async def dep(s: Annotated[Session, Depends(current)]) -> Session:
        if s.role not in roles:
            raise WrongRole()
        return s
    return dep


def same_origin(request: Request) -> bool:
    """A browser's form post names its origin; one from another site is refused before the token."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host")


async def form_of(request: Request, session: Session, max_part_size: int = 1024 * 1024) -> Mapping[str, Any]:
    """The posted form once its CSRF token is this session's and it comes from this site; a field
    (not a file) may hold ``max_part_size`` bytes (Starlette's default 1 MB; the CSV form more)."""
    form = await request.form(max_part_size=max_part_size)
    token = form.get("csrf")
    if not same_origin(request) or not session.csrf_ok(token if isinstance(token, str) else None):
        raise CsrfRefused()
    return form


def translator(request: Request) -> i18n.Translator:
    return i18n.Translator(i18n.lang_of(request.cookies.get(i18n.COOKIE)))


def render(request: Request, template: str, session: Session | None, status_code: int = 200,
           **values: Any) -> HTMLResponse:
    t = translator(request)
    response = TEMPLATES.TemplateResponse(request, template, {
        "t": t, "lang": t.lang, "html_lang": i18n.HTML_LANG[t.lang], "session": session,
        "csrf": session.csrf if session else values.pop("csrf", ""), "path": request.url.path,
        "home": HOME.get(session.role, "/console/") if session else "/console/", **values},
        status_code=status_code)
    secure_headers(response)
    return response


def secure_headers(response: HTMLResponse | RedirectResponse) -> None:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"


def redirect(path: str) -> RedirectResponse:
    r = RedirectResponse(path, status_code=303)
    secure_headers(r)
    return r


def fen(value: float | int | None) -> str:
    """Fen as yuan with two decimals (¥12.30): the console shows money the way people read it."""
    return "—" if value is None else f"¥{value / 100:,.2f}"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.2f}%"


TEMPLATES.env.filters["fen"] = fen
TEMPLATES.env.filters["pct"] = pct
TEMPLATES.env.globals["match_type"] = parse_keyword  # "[kw]" → ("kw", exact)
