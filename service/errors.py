"""One error hierarchy for the service and its mapping to HTTP ``{"error", "detail"}`` bodies."""

from __future__ import annotations

from typing import Any


class AdmatchError(Exception):
    """Base: ``code`` is stable for clients, ``detail`` says what to change."""

    status = 400
    code = "bad_request"

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail, **self.extra}


class InvalidInput(AdmatchError):
    status = 422
    code = "invalid_request"


class Unauthorized(AdmatchError):
    status = 401
    code = "unauthorized"


class Forbidden(AdmatchError):
    status = 403
    code = "forbidden"


class NotFound(AdmatchError):
    status = 404
    code = "not_found"


class Conflict(AdmatchError):
    status = 409
    code = "conflict"


class PayloadTooLarge(AdmatchError):
    status = 413
    code = "payload_too_large"


class UnsupportedMedia(AdmatchError):
    status = 415
    code = "unsupported_media_type"


class NotReady(AdmatchError):
    status = 503
    code = "not_ready"


class Unavailable(AdmatchError):
    """A dependency (Redis) is unavailable: retry later."""

    status = 503
    code = "unavailable"
