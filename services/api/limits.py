"""The request body size limit, enforced on the declared length and on the bytes that arrive."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.errors import ApiError, error_response
from services.api.metrics import ApiMetrics


class BodySizeLimit:
    """ASGI middleware: 413 for a body over `max_bytes`, chunked or not."""

    def __init__(self, app: ASGIApp, max_bytes: int, metrics: ApiMetrics) -> None:
        self._app = app
        self._max_bytes = max_bytes
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self._max_bytes:
            await self._refuse(self._too_large(f"Content-Length is {declared} bytes"), scope, receive, send)
            return
        if declared is not None and declared < 0:
            error = ApiError(400, "bad_request", "Content-Length is not a valid length")
            await self._refuse(error, scope, receive, send)
            return

        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max_bytes:
                    # Raised inside the body read: FastAPI lets HTTPExceptions through, and the
                    # app's error handler answers 413 before any handler ran.
                    raise self._too_large(f"the body streamed more than {self._max_bytes} bytes")
            return message

        await self._app(scope, receive_within_limit, send)

    def _too_large(self, what: str) -> ApiError:
        return ApiError(413, "body_too_large", f"{what}; the limit is {self._max_bytes} bytes")

    async def _refuse(self, error: ApiError, scope: Scope, receive: Receive, send: Send) -> None:
        self._metrics.count_error(error.code)
        await error_response(error)(scope, receive, send)


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None
