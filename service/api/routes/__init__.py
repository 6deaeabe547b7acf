"""HTTP routes, one module per audience: match (publishers), campaigns and ads (advertisers),
admin, ops."""

from fastapi import Request

from service.context import AppContext


def ctx(request: Request) -> AppContext:
    return request.app.state.ctx  # type: ignore[no-any-return]
