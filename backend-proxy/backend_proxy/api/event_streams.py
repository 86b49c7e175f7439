"""Streamed answers (a training's events, a model's archive) holding a slot of the cap until
they end."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from anyio import CancelScope
from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send
from training_sessions.http.events import MEDIA_TYPE, STREAM_HEADERS

from backend_proxy.stream_limits import StreamSlot, StreamSlots
from backend_proxy.training_backend import EventStream

# The 429 of a stream past either cap, as the route documents it.
TOO_MANY_STREAMS_RESPONSE: dict[int | str, dict[str, Any]] = {
    429: {
        "description": "As many event streams are open as allowed, for this backend or for "
        "this client; retry after Retry-After seconds",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
    }
}


class HeldStreamResponse(StreamingResponse):
    """A stream that gives its slot back and closes its source, however it ends."""

    def __init__(
        self, stream: EventStream, slot: StreamSlot, media_type: str, headers: dict[str, str]
    ) -> None:
        super().__init__(stream, media_type=media_type, headers=headers)
        self._stream = stream
        self._slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Ended, failed, or its client left (even before the first byte was sent).
            self._slot.release()
            with CancelScope(shield=True):
                await self._stream.aclose()


async def held_event_stream(
    slots: StreamSlots, request: Request, open_stream: Callable[[], Awaitable[EventStream]]
) -> HeldStreamResponse:
    """A training's Server-Sent Events, held as :func:`held_stream` says."""
    return await held_stream(slots, request, open_stream, MEDIA_TYPE, STREAM_HEADERS)


async def held_stream(
    slots: StreamSlots,
    request: Request,
    open_stream: Callable[[], Awaitable[EventStream]],
    media_type: str,
    headers: dict[str, str],
) -> HeldStreamResponse:
    """Take a slot for the request's client, then open the stream (429 past a cap).

    The slot is taken first, so a refused request opens nothing upstream.
    """
    # Behind a reverse proxy every request comes from the proxy's address (see docs/proxy.md).
    client = request.client.host if request.client is not None else "unknown"
    slot = slots.acquire(client)
    try:
        stream = await open_stream()
    except BaseException:
        slot.release()
        raise
    return HeldStreamResponse(stream, slot, media_type, headers)
