"""Request bodies bounded before anything reads them: a pure ASGI middleware.

Contract: a request whose ``Content-Length`` is over its route's limit gets a 413 at once, before
routing, authentication or parsing, and its body is never read (the connection is closed after
the answer). A body sent without a length (chunked) is counted as it streams in; the read that
crosses the limit raises :class:`BodyTooLarge` (a 413 HTTP exception, answered in the service's
error format), so at most the limit plus one chunk is ever held. Limits
(:class:`BodyLimits`): ``POST /v1/match`` and ``POST /v1/preview`` twice ``ADMATCH_MAX_PAGE_BYTES`` plus 64 KiB (JSON
may escape each Chinese character as ``\\uXXXX``, 6 bytes for UTF-8's 3), the CSV upload
``ADMATCH_MAX_CSV_BYTES``, everything else ``ADMATCH_MAX_BODY_BYTES``.

Not Starlette's ``BaseHTTPMiddleware``, which would buffer; nor Starlette's own body limit, which
answers in plain text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import metrics
from service.settings import Settings

JSON_OVERHEAD = 65_536
_PAGE_PATHS = ("/v1/match", "/v1/preview", "/console/preview")  # bodies carrying a page
_CSV_PATH = re.compile(r"^/v1/campaigns/[^/]+/ads/csv/?$")
_CONSOLE_CSV_PATH = re.compile(r"^/console/upload/[^/]+/?$")  # the console's CSV form (multipart)


@dataclass(frozen=True, slots=True)
class BodyLimits:
    match: int
    csv: int
    default: int

    @classmethod
    def of(cls, s: Settings) -> BodyLimits:
        return cls(match=2 * s.max_page_bytes + JSON_OVERHEAD, csv=s.max_csv_bytes, default=s.max_body_bytes)

    def limit(self, method: str, path: str) -> tuple[int, str]:
        """The largest body accepted for a request, and what to tell a sender who exceeds it."""
        if method == "POST" and path.rstrip("/") in _PAGE_PATHS:
            return self.match, ("send the article text only (page.text and page.html together up to "
                                "ADMATCH_MAX_PAGE_BYTES), no inline images or scripts")
        if method == "POST" and _CSV_PATH.match(path):
            return self.csv, "split the CSV into several smaller uploads"
        if method == "POST" and _CONSOLE_CSV_PATH.match(path):  # the CSV and the form's other fields
            return self.csv + JSON_OVERHEAD, "split the CSV into several smaller uploads"
        return self.default, "no request to this endpoint needs a body this large"


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int, method: str, path: str, advice: str, size: int | None = None) -> None:
        body = f"the request body of {size} bytes" if size is not None else "the request body"
        super().__init__(413, f"{body} is over the {limit}-byte limit of {method} {path}; {advice}",
                         headers={"Connection": "close"})


class BodyLimit:
    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        limit, advice = self.limits.limit(method, path)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, BodyTooLarge(limit, method, path, advice, declared))
            return
        received = 0
        refused: BodyTooLarge | None = None
        started = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused is not None:  # the app reads on after the refusal: tell it the client left
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = BodyTooLarge(limit, method, path, advice)
                    raise refused
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except BodyTooLarge as e:  # raised where no handler answers it (a route reading the stream itself)
            if started:
                raise
            await _refuse(send, e)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP server refuses such a request itself
    return None


async def _refuse(send: Send, e: BodyTooLarge) -> None:
    body = json.dumps({"error": "payload_too_large", "detail": e.detail}, ensure_ascii=False,
                      separators=(",", ":")).encode()
    metrics.ERRORS.labels("413", "payload_too_large").inc()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
