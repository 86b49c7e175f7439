"""A host stream (a training's Server-Sent Events, a model archive) passed on as it arrives.

The host writes the events (ids, ``Last-Event-ID`` resumption, keep-alive lines,
the final ``end``); the relay passes its bytes on unbuffered and unchanged, and
shows them to a recorder (``host_memory``) that keeps them for when the host is down. The
upstream response is opened by ``HostClient.open_events`` on the streams' own
connection pool and closed here, whether the relay ran to the end, failed, or was
never read at all (a client that left before the answer began).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx

from backend_proxy.host_memory import EventRecorder

logger = logging.getLogger(__name__)


class RelayedStream:
    """A host stream as an async iterator of chunks; ``aclose`` frees its connection.

    ``recorder`` (event streams) sees every chunk passed on.
    """

    def __init__(self, upstream: httpx.Response, recorder: EventRecorder | None = None) -> None:
        self._upstream = upstream
        self._chunks = upstream.aiter_raw()
        self._recorder = recorder

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await anext(self._chunks)
        except httpx.TransportError as exc:
            # The host went away mid-stream: an event client reconnects with its Last-Event-ID.
            logger.info("stream from the host ended: %r", exc)
            await self.aclose()
            raise StopAsyncIteration from exc
        except StopAsyncIteration:
            await self.aclose()
            raise
        if self._recorder is not None:
            self._recorder.feed(chunk)
        return chunk

    async def aclose(self) -> None:
        await self._upstream.aclose()
