"""A host training's Server-Sent Events passed on to the backend's client as they arrive.

The host writes the events (ids, ``Last-Event-ID`` resumption, keep-alive lines,
the final ``end``); the relay passes its bytes on unbuffered and unchanged. The
upstream response is opened by ``HostClient.open_events`` on the streams' own
connection pool and closed here, whether the relay ran to the end, failed, or was
never read at all (a client that left before the answer began).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx

logger = logging.getLogger(__name__)


class RelayedEvents:
    """The host's event stream as an async iterator of chunks; ``aclose`` frees its connection."""

    def __init__(self, upstream: httpx.Response) -> None:
        self._upstream = upstream
        self._chunks = upstream.aiter_raw()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await anext(self._chunks)
        except httpx.TransportError as exc:
            # The host went away mid-stream: the client reconnects with its Last-Event-ID.
            logger.info("event stream from the host ended: %r", exc)
            await self.aclose()
            raise StopAsyncIteration from exc
        except StopAsyncIteration:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        await self._upstream.aclose()
