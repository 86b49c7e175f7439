"""``GET /api/trainings/{id}/events`` answers: a stream holding a slot of the cap until it ends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from anyio import CancelScope
from fastapi import Request
from starlette.types import Receive, Scope, Send
from training_sessions.http.events import EventStreamResponse

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


class HeldEventStreamResponse(EventStreamResponse):
    """An event stream that gives its slot back and closes its source, however it ends."""

    def __init__(self, stream: EventStream, slot: StreamSlot) -> None:
        super().__init__(stream)
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
) -> HeldEventStreamResponse:
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
    return HeldEventStreamResponse(stream, slot)
