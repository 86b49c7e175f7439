"""What the backend last saw of each host training beyond its status, for when the host is down.

The status is the routing table's (``last_state``). Here, in memory and bounded: the
last performance body the host answered, and the events the backend relayed (each
Server-Sent Event with an id, as the host wrote it). While the host cannot be
asked, performance and events are answered from these rather than a 503.
"""

from __future__ import annotations

import json
from collections import OrderedDict, deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from training_sessions.contract import TrainingPerformance
from training_sessions.http.events import RETRY_MS

# Host trainings remembered (the least recently seen are forgotten first), and events
# kept per training (the newest; a long run's first batches go first).
MAX_TRAININGS = 256
MAX_EVENTS_PER_TRAINING = 2000


@dataclass(frozen=True, slots=True)
class KeptEvent:
    """One relayed Server-Sent Event: its id, its kind and its bytes as the host sent them."""

    id: int
    kind: str
    raw: bytes


class EventRecorder:
    """Cuts a relayed byte stream into events and keeps those with an id."""

    def __init__(self, kept: deque[KeptEvent]) -> None:
        self._kept = kept
        self._pending = b""

    def feed(self, chunk: bytes) -> None:
        self._pending += chunk.replace(b"\r\n", b"\n")
        *blocks, self._pending = self._pending.split(b"\n\n")
        for block in blocks:
            event = _parse(block)
            # Ids only grow within a training: one seen before (a reconnect) is not kept twice.
            if event is not None and (not self._kept or event.id > self._kept[-1].id):
                self._kept.append(event)


class HostMemory:
    """The last performance body and the relayed events of recently seen host trainings."""

    def __init__(
        self,
        max_trainings: int = MAX_TRAININGS,
        max_events: int = MAX_EVENTS_PER_TRAINING,
    ) -> None:
        self._max_trainings = max_trainings
        self._max_events = max_events
        self._performance: OrderedDict[str, TrainingPerformance] = OrderedDict()
        self._events: OrderedDict[str, deque[KeptEvent]] = OrderedDict()

    def keep_performance(self, performance: TrainingPerformance) -> None:
        _put(self._performance, performance.training_id, performance, self._max_trainings)

    def performance(self, training_id: str) -> TrainingPerformance | None:
        return self._performance.get(training_id)

    def recorder(self, training_id: str) -> EventRecorder:
        """Where a relay of this training's events writes what it passes on."""
        kept = self._events.get(training_id) or deque(maxlen=self._max_events)
        _put(self._events, training_id, kept, self._max_trainings)
        return EventRecorder(kept)

    def has_events(self, training_id: str) -> bool:
        return bool(self._events.get(training_id))

    def replay(
        self, training_id: str, after_id: int, status: dict[str, Any]
    ) -> AsyncGenerator[bytes, None]:
        """The kept events after ``after_id``, then ``status`` as a ``status`` event, then the end.

        The status event has no id, so a client's ``Last-Event-ID`` stays the host's; the
        stream closes (the client reconnects, and finds the host again once it is back).
        """
        events = [event for event in self._events.get(training_id, ()) if event.id > after_id]
        return _replayed(events, status)

    def forget(self, training_id: str) -> None:
        self._performance.pop(training_id, None)
        self._events.pop(training_id, None)


async def _replayed(events: list[KeptEvent], status: dict[str, Any]) -> AsyncGenerator[bytes, None]:
    yield f"retry: {RETRY_MS}\n\n".encode()
    for event in events:
        yield event.raw + b"\n\n"
    if not events or events[-1].kind != "end":
        payload = json.dumps(status, separators=(",", ":"), default=str)
        yield f"event: status\ndata: {payload}\n\n".encode()


def _parse(block: bytes) -> KeptEvent | None:
    event_id: int | None = None
    kind = "message"
    for line in block.split(b"\n"):
        field, _, value = line.partition(b":")
        value = value.removeprefix(b" ")
        if field == b"id" and value.isdigit():
            event_id = int(value)
        elif field == b"event":
            kind = value.decode(errors="replace")
    return KeptEvent(event_id, kind, block) if event_id is not None else None


def _put(table: OrderedDict[str, Any], key: str, value: Any, limit: int) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > limit:
        table.popitem(last=False)
