"""One reader of the event log for every event stream a service holds open.

A stream used to poll the store itself, twice every 0.25 s, from the thread pool: a few
hundred open streams starved every other request. A service now has one
:class:`EventFeed`. While any stream is open, it reads the events logged since its last
read, once per ``poll_seconds`` for every stream together, and hands each event to the
subscriptions of its session. A subscription reads the store itself only to catch up:
its backlog (the events after the client's ``Last-Event-ID``) when it opens, and again
if it falls more than ``buffer_limit`` events behind (a client that stopped reading).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
from anyio import to_thread
from sqlalchemy.exc import SQLAlchemyError

from training_sessions.types import FINAL_STATUSES, SessionEvent, SessionStatus

if TYPE_CHECKING:
    from training_sessions.service import SessionService

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.25
EVENTS_PER_READ = 500
# Events kept for a subscription that is not reading; past this it catches up from the store.
BUFFER_LIMIT = 2000


class Subscription:
    """The events of one session for one stream, in id order, each once."""

    def __init__(
        self, manager: SessionService, training_id: str, after_id: int, status: SessionStatus
    ) -> None:
        self.training_id = training_id
        self.last_id = after_id
        # The session's status as of the last event handed out.
        self.status = status
        self._manager = manager
        self._buffer: deque[SessionEvent] = deque()
        self._behind = True  # the backlog is read from the store first
        self._wake = anyio.Event()

    @property
    def ended(self) -> bool:
        """The session is final and every event up to its final status was handed out."""
        return self.status in FINAL_STATUSES and not self._behind and not self._buffer

    def offer(self, event: SessionEvent) -> None:
        """An event the feed read (called on the event loop)."""
        if len(self._buffer) >= BUFFER_LIMIT:
            self._buffer.clear()
            self._behind = True
        self._buffer.append(event)
        self._wake.set()

    async def next_events(self, timeout: float) -> list[SessionEvent]:
        """The next events; an empty list when none came within ``timeout`` seconds."""
        if self._behind:
            events = await to_thread.run_sync(
                self._manager.events, self.training_id, self.last_id, EVENTS_PER_READ
            )
            self._behind = len(events) == EVENTS_PER_READ
        else:
            if not self._buffer:
                with anyio.move_on_after(timeout):
                    await self._wake.wait()
            self._wake = anyio.Event()
            events = list(self._buffer)
            self._buffer.clear()
        # The backlog and the feed overlap: what was handed out already is dropped.
        fresh = [event for event in events if event.id > self.last_id]
        for event in fresh:
            if event.kind == "status":
                self.status = SessionStatus(event.data["status"])
        if fresh:
            self.last_id = fresh[-1].id
        return fresh


class EventFeed:
    """Reads the event log once per tick while streams are open, for all of them."""

    def __init__(self, manager: SessionService, poll_seconds: float = POLL_SECONDS) -> None:
        self.manager = manager
        self._poll_seconds = poll_seconds
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._cursor = 0
        self._task: asyncio.Task[None] | None = None
        self._starting = anyio.Lock()

    @asynccontextmanager
    async def subscribe(
        self, training_id: str, after_id: int, status: SessionStatus
    ) -> AsyncIterator[Subscription]:
        """Follow a session from ``after_id``; ``status``: its status when the stream opened."""
        subscription = Subscription(self.manager, training_id, after_id, status)
        self._subscriptions.setdefault(training_id, set()).add(subscription)
        try:
            await self._ensure_running()
            yield subscription
        finally:
            followers = self._subscriptions.get(training_id, set())
            followers.discard(subscription)
            if not followers:
                self._subscriptions.pop(training_id, None)

    async def aclose(self) -> None:
        """Stop reading (the service is stopping)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.gather(task, return_exceptions=True)

    async def _ensure_running(self) -> None:
        async with self._starting:
            if self._task is not None:
                return
            # Events up to here reach a new subscription through its backlog read.
            self._cursor = await to_thread.run_sync(self.manager.latest_event_id)
            self._task = asyncio.create_task(self._run(), name="event-feed")

    async def _run(self) -> None:
        try:
            while self._subscriptions:
                read = await self._read()
                if read < EVENTS_PER_READ:
                    await anyio.sleep(self._poll_seconds)
        finally:
            # No await between the last check and this: a new subscriber starts a new task.
            self._task = None

    async def _read(self) -> int:
        """Hand out the events logged since the last read; how many were read."""
        try:
            logged = await to_thread.run_sync(
                self.manager.all_events_after, self._cursor, EVENTS_PER_READ
            )
        except SQLAlchemyError as exc:
            # An outage: the streams wait (with keep-alives) and the next tick tries again.
            logger.warning("event feed: the event log cannot be read: %s", exc)
            return 0
        for training_id, _table_id, event in logged:
            for subscription in self._subscriptions.get(training_id, ()):
                subscription.offer(event)
        if logged:
            self._cursor = logged[-1][1]
        return len(logged)
