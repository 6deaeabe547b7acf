"""API-key authentication: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from service.errors import Forbidden, Unauthorized
from service.store.catalog import Principal
from service.store.records import Role

_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")


async def principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> Principal:
    key = bearer.credentials if bearer else header
    if not key:
        raise Unauthorized("missing API key; send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
    state = request.app.state.ctx
    admin = state.settings.admin_key
    if admin is not None and hmac.compare_digest(key.encode(), admin.get_secret_value().encode()):
        return Principal(Role.ADMIN, "admin")
    found = await state.catalog.resolve_key(key)
    if found is None:
        raise Unauthorized("API key not recognised; check it or ask the admin for a new one")
    return found


def require(role: Role):  # noqa: ANN201 - FastAPI dependency factory
    async def dep(p: Annotated[Principal, Depends(principal)]) -> Principal:
        if p.role != role:
            raise Forbidden(f"this endpoint needs a {role.value} key; you sent a {p.role.value} key")
        return p
    return dep


Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
AdvertiserP = Annotated[Principal, Depends(require(Role.ADVERTISER))]
PublisherP = Annotated[Principal, Depends(require(Role.PUBLISHER))]


async def metrics_reader(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> None:
    """/metrics: the admin key or ADMATCH_METRICS_KEY, unless ADMATCH_METRICS_PUBLIC (the figures
    include money charged and error rates)."""
    s = request.app.state.ctx.settings
    if s.metrics_public:
        return
    key = bearer.credentials if bearer else header
    if not key:
        raise Unauthorized("/metrics needs a key; send the admin key or ADMATCH_METRICS_KEY as "
                           "'Authorization: Bearer <key>'")
    for allowed in (s.admin_key, s.metrics_key):
        if allowed is not None and hmac.compare_digest(key.encode(), allowed.get_secret_value().encode()):
            return
    raise Unauthorized("this key does not read /metrics; send the admin key or ADMATCH_METRICS_KEY")
