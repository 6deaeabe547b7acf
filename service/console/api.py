"""The console's only way to read or change anything: the service's own REST API, called in
process (httpx over the ASGI app, no socket) with the signed-in user's API key. So every rule —
roles, validation, budgets, creative review — is the API's, and an error the console shows is the
API's error, field by field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import Request


@dataclass
class ApiError(Exception):
    status: int
    detail: str
    fields: list[dict[str, Any]] = field(default_factory=list)
    body: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status}: {self.detail}"


class Api:
    """Calls of one console request, with one API key."""

    def __init__(self, request: Request, api_key: str) -> None:
        host = request.headers.get("host") or "localhost"
        scheme = request.url.scheme
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=request.app),
                                         base_url=f"{scheme}://{host}",
                                         headers={"Authorization": f"Bearer {api_key}"}, timeout=30)

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                   content: bytes | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
        r = await self._client.request(method, path, json=json, params=params, content=content, headers=headers)
        if r.status_code >= 400:
            try:
                body = r.json()
            except ValueError:
                body = {"detail": r.text[:500]}
            detail = body.get("detail") if isinstance(body, dict) else None
            raise ApiError(r.status_code, str(detail or r.reason_phrase),
                           list(body.get("fields") or []) if isinstance(body, dict) else [],
                           body if isinstance(body, dict) else {})
        return r

    async def answer(self, path: str) -> httpx.Response:
        """A GET whose error status is part of the answer (``/readyz`` is 503 without an index)."""
        return await self._client.get(path)

    async def get(self, path: str, **params: Any) -> Any:
        return (await self.call("GET", path, params={k: v for k, v in params.items() if v is not None})).json()

    async def post(self, path: str, body: Any = None, **params: Any) -> Any:
        r = await self.call("POST", path, json=body, params=params or None)
        return r.json() if r.content else None

    async def patch(self, path: str, body: Any) -> Any:
        return (await self.call("PATCH", path, json=body)).json()

    async def delete(self, path: str) -> None:
        await self.call("DELETE", path)
