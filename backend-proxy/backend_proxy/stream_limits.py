"""The cap on concurrent event streams, per service and per client address.

Every event stream the backend serves (relayed from the host, or read from a
local training) holds one slot from the moment it is asked for until its answer
ends, fails or its client leaves. Past either cap a request is refused at once
(429 with ``Retry-After``), before anything is opened upstream. Slots are taken
and given back on the event loop only, so no lock is needed.
"""

from __future__ import annotations

from collections import Counter

from backend_proxy.errors import TooManyStreamsError
from backend_proxy.metrics import ProxyMetrics


class StreamSlot:
    """One open stream's place; :meth:`release` may be called any number of times."""

    def __init__(self, slots: StreamSlots, client: str) -> None:
        self._slots = slots
        self._client = client
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._slots._give_back(self._client)


class StreamSlots:
    """At most ``max_streams`` open streams, and ``max_per_client`` per client address."""

    def __init__(
        self,
        max_streams: int,
        max_per_client: int,
        retry_after_seconds: int,
        metrics: ProxyMetrics,
    ) -> None:
        self._max_streams = max_streams
        self._max_per_client = max_per_client
        self._retry_after = retry_after_seconds
        self._metrics = metrics
        self._by_client: Counter[str] = Counter()

    @property
    def open_streams(self) -> int:
        return self._by_client.total()

    def acquire(self, client: str) -> StreamSlot:
        """A slot for one more stream of ``client``.

        Raises:
            TooManyStreamsError: the service's or this client's cap is reached.
        """
        if self.open_streams >= self._max_streams:
            self._refused("service")
            raise TooManyStreamsError(
                f"this backend already serves {self._max_streams} event streams, its limit "
                "(BACKEND_MAX_EVENT_STREAMS); retry later",
                self._retry_after,
            )
        if self._by_client[client] >= self._max_per_client:
            self._refused("client")
            raise TooManyStreamsError(
                f"this client already has {self._max_per_client} event streams open, the limit "
                "per client (BACKEND_MAX_EVENT_STREAMS_PER_CLIENT); close one or retry later",
                self._retry_after,
            )
        self._by_client[client] += 1
        self._metrics.event_streams.set(self.open_streams)
        return StreamSlot(self, client)

    def _give_back(self, client: str) -> None:
        self._by_client[client] -= 1
        if self._by_client[client] <= 0:
            del self._by_client[client]
        self._metrics.event_streams.set(self.open_streams)

    def _refused(self, limit: str) -> None:
        self._metrics.event_streams_refused.labels(limit=limit).inc()
