"""A signed-in console in a TestClient: the real app, Redis and API underneath."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = CSRF.search(html)
    assert m, "no CSRF field on the page"
    return m.group(1)


def sign_in(client: TestClient, api_key: str) -> TestClient:
    """Sign in through the form (its CSRF cookie and field); the client keeps the session cookie."""
    page = client.get("/console/login")
    assert page.status_code == 200
    r = client.post("/console/login", data={"api_key": api_key, "csrf": csrf_of(page.text), "next": "/console/"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    return client


def post_form(client: TestClient, page_path: str, action: str, data: dict[str, str], **kw: object) -> object:
    """Post a form of ``page_path`` with the page's CSRF token, as a browser would."""
    token = csrf_of(client.get(page_path).text)
    return client.post(action, data={"csrf": token, **data}, follow_redirects=False, **kw)  # type: ignore[arg-type]
