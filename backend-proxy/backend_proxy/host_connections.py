"""The backend's connections to the training host: two pools, made in the app's lifespan.

One pool for API calls, one for event streams (relayed by ``event_relay.py``), so
streams that last an hour never hold the connections a status call or a start
needs. A full pool is ``httpx.PoolTimeout``, which ``host_client.py`` answers as
``HostConnectionsBusyError``: this backend is busy, the host may be fine.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from training_sessions.http.events import KEEPALIVE_SECONDS


@dataclass(frozen=True, slots=True)
class HostConnections:
    """The backend's two HTTP clients to the host (created in the app's lifespan)."""

    api: httpx.AsyncClient
    streams: httpx.AsyncClient

    @classmethod
    def open(
        cls,
        base_url: str,
        *,
        read_timeout: float,
        connect_timeout: float,
        token: str | None,
        max_connections: int,
        max_streams: int,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> HostConnections:
        """``max_connections`` for API calls, ``max_streams`` more for event streams."""
        # The host sends a keep-alive line every KEEPALIVE_SECONDS while a stream is idle.
        stream_timeout = httpx.Timeout(KEEPALIVE_SECONDS * 4, connect=connect_timeout)
        return cls(
            api=_http_client(
                base_url,
                httpx.Timeout(read_timeout, connect=connect_timeout),
                token,
                max_connections,
                transport,
            ),
            streams=_http_client(base_url, stream_timeout, token, max_streams, transport),
        )

    async def aclose(self) -> None:
        await self.streams.aclose()
        await self.api.aclose()


def _http_client(
    base_url: str,
    timeout: httpx.Timeout,
    token: str | None,
    max_connections: int,
    transport: httpx.AsyncBaseTransport | None,
) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=timeout,
        headers=headers,
        transport=transport,
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=min(max_connections, 20),
        ),
        # The host service is this machine (or its Docker host): never through an HTTP
        # proxy from the environment, and no per-request environment lookups.
        trust_env=False,
    )
