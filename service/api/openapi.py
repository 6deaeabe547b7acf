"""The OpenAPI document as the service answers: FastAPI's default 422 dropped.

FastAPI documents a 422 with its own body (``detail`` an array) on every operation that has
parameters. admatch answers 422 with :class:`~service.api.schemas.ValidationErrorOut`, and each
route that can answer one documents it (``service.api.responses.errors``); the defaults left are
on operations whose only parameters are plain path strings, which nothing refuses.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

_DEFAULT_422 = "#/components/schemas/HTTPValidationError"


def _without_default_422(schema: dict[str, Any]) -> dict[str, Any]:
    for ops in schema.get("paths", {}).values():
        for op in ops.values():
            r422 = op.get("responses", {}).get("422", {})
            if r422.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref") == _DEFAULT_422:
                del op["responses"]["422"]
    components = schema.get("components", {}).get("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    return schema


def install(app: FastAPI) -> None:
    """Serve the document above at /openapi.json (built once)."""
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _without_default_422(get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes))
        return app.openapi_schema
    app.openapi = openapi  # type: ignore[method-assign]
