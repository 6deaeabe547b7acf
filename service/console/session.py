"""Console sessions: an API key exchanged for a session cookie.

The cookie is ``<session id>.<secret>`` (two random 32-byte values, URL-safe base64). Redis keeps
``am:console:<session id>`` → the principal (role, id, name), the CSRF token and the API key
*encrypted* with the cookie's secret (AES-GCM), for the session's lifetime
(``ADMATCH_CONSOLE_SESSION_SECONDS``, absolute: no sliding renewal). So neither a Redis dump nor a
stolen cookie alone yields the key, and signing out deletes the record at once.

The cookie is HttpOnly, SameSite=Strict, and Secure when the console is served over HTTPS.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
from dataclasses import dataclass

import redis.asyncio as aioredis
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from service.resilience.redis_guard import STORE_DOWN
from service.store import keys

COOKIE = "admatch_console"
NONCE_BYTES = 12


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def session_key(sid: str) -> str:
    return f"{keys.PREFIX}console:{sid}"


@dataclass(frozen=True, slots=True)
class Session:
    sid: str
    role: str
    principal_id: str
    name: str
    csrf: str
    api_key: str

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


class Sessions:
    def __init__(self, r: aioredis.Redis, ttl_s: int) -> None:
        self.r = r
        self.ttl_s = ttl_s

    async def create(self, *, api_key: str, role: str, principal_id: str, name: str) -> tuple[Session, str]:
        """A new session and the cookie value that opens it."""
        sid, secret = secrets.token_bytes(32), secrets.token_bytes(32)
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = nonce + AESGCM(secret).encrypt(nonce, api_key.encode(), sid)
        session = Session(sid=_b64(sid), role=role, principal_id=principal_id, name=name,
                          csrf=secrets.token_urlsafe(32), api_key=api_key)
        record = {"role": role, "id": principal_id, "name": name, "csrf": session.csrf, "key": _b64(sealed)}
        await self.r.set(session_key(session.sid), json.dumps(record, ensure_ascii=False), ex=self.ttl_s)
        return session, f"{session.sid}.{_b64(secret)}"

    async def open(self, cookie: str | None) -> Session | None:
        """The session a cookie opens; None when it is missing, malformed, expired or signed out."""
        if not cookie or cookie.count(".") != 1:
            return None
        sid_text, secret_text = cookie.split(".")
        try:
            sid, secret = _unb64(sid_text), _unb64(secret_text)
        except (ValueError, TypeError):
            return None
        if len(sid) != 32 or len(secret) != 32:
            return None
        try:
            raw = await self.r.get(session_key(sid_text))
        except STORE_DOWN:
            return None
        if raw is None:
            return None
        try:
            d = json.loads(raw)
            sealed = _unb64(d["key"])
            api_key = AESGCM(secret).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], sid).decode()
        except (ValueError, KeyError, TypeError, InvalidTag):
            return None
        return Session(sid=sid_text, role=d["role"], principal_id=d["id"], name=d["name"], csrf=d["csrf"],
                       api_key=api_key)

    async def close(self, session: Session) -> None:
        await self.r.delete(session_key(session.sid))
