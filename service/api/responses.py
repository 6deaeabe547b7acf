"""The error responses each operation documents in the OpenAPI document: one model per status
(:class:`~service.api.schemas.ValidationErrorOut` for 422, :class:`~service.api.schemas.ErrorOut`
for the others), each with what it means."""

from __future__ import annotations

from typing import Any

from service.api.schemas import ErrorOut, ValidationErrorOut

MEANING = {
    400: "forged, altered or damaged click token; nothing is recorded",
    401: "API key missing or not recognised",
    403: "the key is of another role, or the publisher id is not the key's",
    404: "no such resource, or it belongs to another tenant",
    409: "the change conflicts with what exists (the message says what to do instead)",
    413: "body or page too large (the message gives the limit)",
    415: "content type not accepted (the message names the one to send)",
    422: "the request's content is not acceptable; detail and fields say what to change",
    429: "too many requests this minute from this site token or address; retry after Retry-After seconds",
    503: "not ready: no index is loaded yet",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that can answer ``statuses``."""
    return {s: {"model": ValidationErrorOut if s == 422 else ErrorOut, "description": MEANING[s]}
            for s in statuses}
