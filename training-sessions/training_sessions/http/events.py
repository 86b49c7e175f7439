"""``GET .../trainings/{id}/events``: a session's event log as Server-Sent Events.

The stream replays the session's event log after the client's ``Last-Event-ID`` and then
follows it through the service's one :class:`~training_sessions.event_feed.EventFeed`;
every event carries its log id. When the session is final (completed, failed, cancelled)
the stream sends an ``end`` event and closes. While nothing happens it sends a comment
line now and then, so idle proxies keep it open.

A service holds at most ``limit`` streams, and at most ``per_client`` for one client
address (:class:`StreamSlots`); past either, a stream is refused with 429 and
``Retry-After`` before it opens.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from typing import Annotated, Any

from anyio import CancelScope, to_thread
from fastapi import Header, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from training_sessions.errors import InvalidRequestError, TooManyStreamsError
from training_sessions.event_feed import EventFeed
from training_sessions.types import SessionStatus

KEEPALIVE_SECONDS = 15.0
# Reconnecting clients wait this long (ms) before trying again.
RETRY_MS = 2000
# A client refused a stream is told to try again after this many seconds.
RETRY_AFTER_SECONDS = 5
MEDIA_TYPE = "text/event-stream"
# No buffering on the way: nginx honours X-Accel-Buffering; caches must not keep it.
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

# A string (empty when absent), so the document does not offer a "null" header value.
LastEventIdHeader = Annotated[
    str,
    Header(
        alias="Last-Event-ID",
        description="the id of the last event received: the stream resumes after it",
        # What parse_last_event_id takes (it says what is wrong in its own words).
        json_schema_extra={"pattern": "^[0-9]{1,18}$"},
    ),
]

EVENT_STREAM_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events: status, phase, progress, epoch, log, result, "
        "then end once the training is final; each with an id to resume from",
    }
}


class StreamSlot:
    """One open stream's place; released once, when its answer is over."""

    def __init__(self, slots: StreamSlots, client: str) -> None:
        self._slots = slots
        self._client: str | None = client

    def release(self) -> None:
        if self._client is not None:
            self._slots.give_back(self._client)
            self._client = None


class StreamSlots:
    """How many event streams a service holds: at most ``limit``, ``per_client`` per address.

    A refusal names the setting that sets the cap (``setting_names``: the service's, then
    the client's); ``on_change`` hears the count of open streams, ``on_refused`` which cap
    refused one (``"service"`` or ``"client"``), for a service's metrics. Used on the event
    loop only (the stream routes are ``async``), so it needs no lock.
    """

    def __init__(
        self,
        limit: int,
        per_client: int,
        retry_after_seconds: int = RETRY_AFTER_SECONDS,
        *,
        setting_names: tuple[str, str] = ("max_event_streams", "max_event_streams_per_client"),
        on_change: Callable[[int], object] | None = None,
        on_refused: Callable[[str], object] | None = None,
    ) -> None:
        self.limit = limit
        self.per_client = per_client
        self.retry_after_seconds = retry_after_seconds
        self._setting_names = setting_names
        self._on_change = on_change
        self._on_refused = on_refused
        self._open: Counter[str] = Counter()

    @property
    def open(self) -> int:
        return self._open.total()

    def take(self, client: str) -> StreamSlot:
        """A slot for one more stream of ``client``.

        Raises:
            TooManyStreamsError: the service or this client holds its most streams.
        """
        service_setting, client_setting = self._setting_names
        if self.open >= self.limit:
            raise self._refuse(
                "service",
                f"this service already serves {self.limit} event streams, its limit "
                f"({service_setting}); retry later",
            )
        if self._open[client] >= self.per_client:
            raise self._refuse(
                "client",
                f"this client already has {self.per_client} event streams open, the limit "
                f"per client ({client_setting}); close one or retry later",
            )
        self._open[client] += 1
        self._changed()
        return StreamSlot(self, client)

    def give_back(self, client: str) -> None:
        self._open[client] -= 1
        if self._open[client] <= 0:
            del self._open[client]
        self._changed()

    def _refuse(self, cap: str, message: str) -> TooManyStreamsError:
        if self._on_refused is not None:
            self._on_refused(cap)
        return TooManyStreamsError(message, self.retry_after_seconds)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.open)


def parse_last_event_id(value: str | None) -> int:
    """The event id to resume after (0: from the start).

    Raises:
        InvalidRequestError: not a non-negative integer.
    """
    if value is None or not value.strip():
        return 0
    text = value.strip()
    if not text.isdigit() or len(text) > 18:
        raise InvalidRequestError(
            f"Last-Event-ID must be an event id (a non-negative integer), got {value[:40]!r}"
        )
    return int(text)


def format_event(event_id: int, kind: str, data: dict[str, Any]) -> bytes:
    """One SSE message: ``id``, ``event`` and one ``data`` line of JSON."""
    payload = json.dumps(data, separators=(",", ":"), default=str)
    return f"id: {event_id}\nevent: {kind}\ndata: {payload}\n\n".encode()


async def follow_events(
    feed: EventFeed, training_id: str, after_id: int, status: SessionStatus
) -> AsyncIterator[bytes]:
    """The session's events after ``after_id``, then new ones as they are logged, then end."""
    yield f"retry: {RETRY_MS}\n\n".encode()
    async with feed.subscribe(training_id, after_id, status) as subscription:
        while True:
            events = await subscription.next_events(KEEPALIVE_SECONDS)
            for event in events:
                yield format_event(event.id, event.kind, event.data)
            if subscription.ended:
                # Its own id, kept when the status became final: a client that resumes
                # after it misses nothing logged later (a resume's events).
                view = await to_thread.run_sync(feed.manager.get, training_id)
                end_id = view.end_event_id or subscription.last_id + 1
                end = {"status": subscription.status.value}
                yield format_event(end_id, "end", end)
                return
            if not events:
                yield b": keep-alive\n\n"


async def open_event_stream(
    feed: EventFeed, training_id: str, last_event_id: str | None
) -> AsyncIterator[bytes]:
    """The session's stream; a bad Last-Event-ID or an unknown id raise before it opens."""
    after_id = parse_last_event_id(last_event_id)
    view = await to_thread.run_sync(feed.manager.get, training_id)
    return follow_events(feed, training_id, after_id, view.status)


class HeldStreamResponse(StreamingResponse):
    """A streamed answer that holds a slot of a stream cap while it runs.

    However the answer ends (done, failed, its client gone, the server stopping), it gives
    its slot back and closes its source (a relay's connection, a feed's subscription).
    """

    def __init__(
        self,
        content: AsyncIterable[bytes],
        slot: StreamSlot | None = None,
        # FastAPI reads the documented status of a route from this parameter's default.
        status_code: int = 200,
        media_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(content, status_code=status_code, media_type=media_type, headers=headers)
        self._content = content
        self._slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self._slot is not None:
                self._slot.release()
            close = getattr(self._content, "aclose", None)
            if close is not None:
                with CancelScope(shield=True):
                    await close()


class EventStreamResponse(HeldStreamResponse):
    """A Server-Sent Events answer (its media type documents the route in OpenAPI)."""

    media_type = MEDIA_TYPE

    def __init__(
        self,
        content: AsyncIterable[bytes],
        slot: StreamSlot | None = None,
        status_code: int = 200,
    ) -> None:
        super().__init__(content, slot, status_code, headers=STREAM_HEADERS)


def client_address(request: Request) -> str:
    """The address a stream counts against (behind a reverse proxy: the proxy's)."""
    return request.client.host if request.client is not None else "unknown"


async def _open_holding_a_slot(
    slots: StreamSlots, request: Request, opening: Callable[[], Awaitable[AsyncIterable[bytes]]]
) -> tuple[AsyncIterable[bytes], StreamSlot]:
    slot = slots.take(client_address(request))
    try:
        stream = await opening()
    except BaseException:
        slot.release()
        raise
    return stream, slot


async def limited_event_stream(
    slots: StreamSlots, request: Request, opening: Callable[[], Awaitable[AsyncIterable[bytes]]]
) -> EventStreamResponse:
    """Take a slot for the request's client, then open the stream with ``opening()``.

    The slot is given back if opening fails (404, 422) or once the answer ends.

    Raises:
        TooManyStreamsError: no slot is free (before anything else is checked).
    """
    return EventStreamResponse(*await _open_holding_a_slot(slots, request, opening))


async def limited_stream(
    slots: StreamSlots,
    request: Request,
    opening: Callable[[], Awaitable[AsyncIterable[bytes]]],
    media_type: str,
    headers: Mapping[str, str],
) -> HeldStreamResponse:
    """Any other long answer (a model's archive) under the same caps as the event streams."""
    stream, slot = await _open_holding_a_slot(slots, request, opening)
    return HeldStreamResponse(stream, slot, media_type=media_type, headers=headers)
