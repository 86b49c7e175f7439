"""``GET .../trainings/{id}/events``: a session's event log as Server-Sent Events.

The stream replays the session's event log (``SessionService.events``) after the
client's ``Last-Event-ID`` and then follows it, polling the store a few times a
second; every event carries its log id. When the session is final (completed,
failed, cancelled) the stream sends an ``end`` event and closes. While nothing
happens it sends a comment line now and then, so idle proxies keep it open.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any

from anyio import sleep, to_thread
from fastapi import Header
from fastapi.responses import StreamingResponse

from training_sessions.errors import InvalidRequestError
from training_sessions.service import SessionService
from training_sessions.types import FINAL_STATUSES, SessionEvent

POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0
EVENTS_PER_READ = 500
# Reconnecting clients wait this long (ms) before trying again.
RETRY_MS = 2000
MEDIA_TYPE = "text/event-stream"
# No buffering on the way: nginx honours X-Accel-Buffering; caches must not keep it.
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

LastEventIdHeader = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        description="the id of the last event received: the stream resumes after it",
    ),
]

EVENT_STREAM_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events: status, phase, progress, epoch, log, result, "
        "then end once the training is final; each with an id to resume from",
    }
}


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
    manager: SessionService, training_id: str, after_id: int
) -> AsyncIterator[bytes]:
    """The session's events after ``after_id``, then new ones as they are logged, then end."""
    yield f"retry: {RETRY_MS}\n\n".encode()
    last_id, last_sent = after_id, time.monotonic()
    while True:
        # Status first: a final status is logged with its events in one transaction,
        # so a read after seeing it finds them all.
        view = await to_thread.run_sync(manager.get, training_id)
        final = view.status in FINAL_STATUSES
        events: Sequence[SessionEvent] = await to_thread.run_sync(
            manager.events, training_id, last_id, EVENTS_PER_READ
        )
        for event in events:
            yield format_event(event.id, event.kind, event.data)
            last_id = event.id
        if events:
            last_sent = time.monotonic()
            if len(events) == EVENTS_PER_READ:
                continue
        if final:
            # Its own id, kept when the status became final: a client that resumes after
            # it misses nothing logged later (a resume's events).
            end_id = view.end_event_id if view.end_event_id is not None else last_id + 1
            yield format_event(end_id, "end", {"status": view.status.value})
            return
        if time.monotonic() - last_sent > KEEPALIVE_SECONDS:
            yield b": keep-alive\n\n"
            last_sent = time.monotonic()
        await sleep(POLL_SECONDS)


async def open_event_stream(
    manager: SessionService, training_id: str, last_event_id: str | None
) -> AsyncIterator[bytes]:
    """The session's stream; a bad Last-Event-ID or an unknown id raise before it opens."""
    after_id = parse_last_event_id(last_event_id)
    await to_thread.run_sync(manager.get, training_id)
    return follow_events(manager, training_id, after_id)


class EventStreamResponse(StreamingResponse):
    """A Server-Sent Events answer (its media type documents the route in OpenAPI)."""

    media_type = MEDIA_TYPE


def event_stream_response(stream: AsyncIterator[bytes]) -> EventStreamResponse:
    """The streaming answer, sent on as each event is ready."""
    return EventStreamResponse(stream, headers=STREAM_HEADERS)
