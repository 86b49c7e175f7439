"""Reject request bodies larger than ``max_body_bytes`` with 413 before any route parses them.

Both services add :class:`BodySizeLimitMiddleware` with their ``max_body_bytes`` setting.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The default limit of both services: far above any real strategy, far below harm.
DEFAULT_MAX_BODY_BYTES = 1_048_576


class BodySizeLimitMiddleware:
    """Buffers at most ``max_bytes`` of a body, then replays it to the app.

    Checking Content-Length alone is not enough: chunked uploads carry none.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in {"GET", "HEAD", "OPTIONS"}:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Imported here: the settings read DEFAULT_MAX_BODY_BYTES on paths (--help, a refused
        # address) that must not load the error table and the database errors it maps.
        from training_sessions.http.errors import error_response

        response = error_response(
            413,
            f"request body is larger than the limit of {self.max_bytes} bytes",
            "RequestTooLargeError",
        )
        await response(scope, receive, send)
