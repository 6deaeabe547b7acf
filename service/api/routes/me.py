"""Who a key is (any key): the web console signs in with a key and asks this first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from service.api.console_schemas import MeOut
from service.api.responses import errors
from service.api.routes import ctx
from service.auth import principal
from service.errors import NotFound
from service.openrtb.exchanges import ExchangeStore
from service.store.catalog import Principal
from service.store.records import Role

router = APIRouter(prefix="/v1", tags=["account"])


@router.get("/me", summary="Who this API key is: its role, id and name", responses=errors(401))
async def me(request: Request, p: Annotated[Principal, Depends(principal)]) -> MeOut:
    c = ctx(request)
    name = "admin"
    try:
        if p.role == Role.ADVERTISER:
            name = (await c.catalog.get_advertiser(p.id)).name
        elif p.role == Role.PUBLISHER:
            name = (await c.catalog.get_publisher(p.id)).name
        elif p.role == Role.EXCHANGE:
            name = (await ExchangeStore(c.redis).get(p.id)).name
    except NotFound:  # a key whose record is gone: it still says whose it was
        name = p.id
    return MeOut(role=p.role.value, id=p.id, name=name)
