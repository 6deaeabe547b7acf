"""Console sign-in: an API key for a session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS),
CSRF on every form, sign-out and expiry, role pages, the language switch."""

from __future__ import annotations

import redis
from fastapi.testclient import TestClient

from service.console.session import COOKIE, session_key
from tests.conftest import ADMIN_KEY
from tests.console.conftest import csrf_of, post_form, sign_in
from tests.helpers import new_advertiser


def _key(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def test_pages_need_a_session(client: TestClient) -> None:
    r = client.get("/console/campaigns", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/login?next=/console/campaigns"
    assert client.get("/console/", follow_redirects=False).headers["location"] == "/console/login"


def test_sign_in_sets_a_strict_httponly_cookie_and_lands_on_the_role_home(client: TestClient) -> None:
    _, adv = new_advertiser(client, "长联通信")
    page = client.get("/console/login")
    assert 'lang="zh-CN"' in page.text and "API 密钥" in page.text
    r = client.post("/console/login", data={"api_key": _key(adv), "csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/campaigns"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    home = client.get("/console/campaigns")
    assert home.status_code == 200 and "长联通信" in home.text and "推广计划" in home.text


def test_cookie_is_secure_over_https(settings) -> None:  # type: ignore[no-untyped-def]
    from service.app import create_app
    with TestClient(create_app(settings), base_url="https://testserver") as c:
        page = c.get("/console/login")
        r = c.post("/console/login", data={"api_key": ADMIN_KEY, "csrf": csrf_of(page.text)}, follow_redirects=False)
        assert r.status_code == 303
        cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(COOKIE + "="))
        assert "Secure" in cookie


def test_wrong_key_is_refused_with_a_message(client: TestClient) -> None:
    page = client.get("/console/login")
    r = client.post("/console/login", data={"api_key": "no-such-key", "csrf": csrf_of(page.text)})
    assert r.status_code == 401 and "密钥无效" in r.text
    assert COOKIE not in r.cookies


def test_sign_in_without_the_form_token_is_refused(client: TestClient) -> None:
    client.get("/console/login")
    r = client.post("/console/login", data={"api_key": ADMIN_KEY, "csrf": "forged"})
    assert r.status_code == 403


def test_form_post_without_csrf_or_from_another_site_is_refused(client: TestClient) -> None:
    _, adv = new_advertiser(client)
    sign_in(client, _key(adv))
    r = client.post("/console/campaigns", data={"name": "无令牌"}, follow_redirects=False)
    assert r.status_code == 403 and "安全令牌" in r.text
    token = csrf_of(client.get("/console/campaigns").text)
    r = client.post("/console/campaigns", data={"name": "跨站", "csrf": token},
                    headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert r.status_code == 403
    assert client.get("/v1/campaigns", headers=adv).json() == []  # nothing was created
    r = client.post("/console/campaigns", data={"name": "本站", "csrf": token}, follow_redirects=False)
    assert r.status_code == 303


def test_sign_out_ends_the_session_at_once(client: TestClient, clean_redis: redis.Redis) -> None:
    _, adv = new_advertiser(client)
    sign_in(client, _key(adv))
    cookie = client.cookies.get(COOKIE)
    assert cookie and clean_redis.exists(session_key(cookie.split(".")[0]))
    r = post_form(client, "/console/campaigns", "/console/logout", {})
    assert r.status_code == 303  # type: ignore[attr-defined]
    assert not clean_redis.exists(session_key(cookie.split(".")[0]))
    client.cookies.set(COOKIE, cookie, path="/console/")  # a copy of the old cookie opens nothing
    assert client.get("/console/campaigns", follow_redirects=False).status_code == 303


def test_session_expires(client: TestClient, clean_redis: redis.Redis, settings) -> None:  # type: ignore[no-untyped-def]
    _, adv = new_advertiser(client)
    sign_in(client, _key(adv))
    sid = client.cookies[COOKIE].split(".")[0]
    assert 0 < clean_redis.ttl(session_key(sid)) <= settings.console_session_seconds
    clean_redis.pexpire(session_key(sid), 1)
    import time
    time.sleep(0.05)
    assert client.get("/console/campaigns", follow_redirects=False).status_code == 303


def test_redis_holds_no_plain_api_key(client: TestClient, clean_redis: redis.Redis) -> None:
    _, adv = new_advertiser(client)
    sign_in(client, _key(adv))
    sid = client.cookies[COOKIE].split(".")[0]
    assert _key(adv) not in str(clean_redis.get(session_key(sid)))


def test_a_tampered_cookie_opens_nothing(client: TestClient) -> None:
    _, adv = new_advertiser(client)
    sign_in(client, _key(adv))
    sid, secret = client.cookies[COOKIE].split(".")
    client.cookies.set(COOKIE, sid + "." + secret[::-1], path="/console/")
    assert client.get("/console/campaigns", follow_redirects=False).status_code == 303


def test_role_pages(client: TestClient) -> None:
    _, adv = new_advertiser(client)
    sign_in(client, _key(adv))
    assert client.get("/console/review").status_code == 403
    assert client.get("/console/earnings").status_code == 403


def test_admin_lands_on_review_and_sees_health(client: TestClient) -> None:
    page = client.get("/console/login")
    r = client.post("/console/login", data={"api_key": ADMIN_KEY, "csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.headers["location"] == "/console/review"
    assert "广告审核队列" in client.get("/console/review").text
    admin = client.get("/console/admin")
    assert admin.status_code == 200 and "服务状态" in admin.text


def test_english_switch(client: TestClient) -> None:
    r = client.get("/console/lang/en?next=/console/login", follow_redirects=False)
    assert r.headers["location"] == "/console/login"
    page = client.get("/console/login")
    assert 'lang="en"' in page.text and "Sign in" in page.text and "登录" not in page.text


def test_next_is_never_an_open_redirect(client: TestClient) -> None:
    for evil in ("https://evil.example/", "//evil.example/", "/v1/campaigns"):
        r = client.get(f"/console/lang/en?next={evil}", follow_redirects=False)
        assert r.headers["location"] == "/console/"


def test_pages_carry_a_content_security_policy(client: TestClient) -> None:
    csp = client.get("/console/login").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
