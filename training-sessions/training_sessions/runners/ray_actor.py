"""What runs on a Ray node: one :class:`SessionActor` per attempt of a session.

The actor trains through :func:`~training_sessions.worker.train_session`, exactly as a
local worker does, and keeps what the run reports in a bounded buffer that the
service's handle drains (:meth:`SessionActor.drain`); a stop sets the flag the engine
polls between batches. Its methods run in the actor's threads (``max_concurrency``), so
a drain or a stop is answered while :meth:`SessionActor.run` trains.

It is a plain class: :mod:`training_sessions.runners.ray_cluster` makes it a Ray actor.
Ray sets ``CUDA_VISIBLE_DEVICES`` to the GPUs it assigned, so ``cuda`` is that card.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque

from training_sessions.messages import WorkerMessage
from training_sessions.runners import Placement
from training_sessions.worker import WorkerCancel, WorkerSpec, configure_logging, train_session

logger = logging.getLogger(__name__)

# Messages kept for a service that does not drain (restarting): the oldest go first,
# the result, sent last, stays.
MAX_BUFFERED_MESSAGES = 10_000


class SessionActor:
    """One attempt of one session on whichever node Ray placed it."""

    def __init__(self, spec: WorkerSpec) -> None:
        os.environ.update(spec.environment)  # before CUDA starts: cuBLAS's determinism
        self._spec = spec
        self._buffer: deque[WorkerMessage] = deque(maxlen=MAX_BUFFERED_MESSAGES)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ended = False

    def where(self) -> Placement:
        """This actor's node: Ray's node id (hex) and the node's address."""
        import ray

        return Placement(
            node=ray.get_runtime_context().get_node_id(),
            node_address=ray.util.get_node_ip_address(),
        )

    def run(self) -> None:
        """Train the attempt; its messages wait in the buffer for :meth:`drain`."""
        import ray

        cancel = WorkerCancel(self._stop)
        configure_logging(self._spec, self._send)
        logger.info(
            "training %s: attempt %d started on node %s (GPUs %s)",
            self._spec.training_id,
            self._spec.attempt,
            ray.get_runtime_context().get_node_id(),
            ray.get_gpu_ids() or "none",
        )
        try:
            train_session(self._spec, cancel, self._send)
        finally:
            with self._lock:
                self._ended = True

    def drain(self) -> tuple[list[WorkerMessage], bool]:
        """The messages sent since the last drain, and whether the run has ended.

        Read under one lock: once it says ended, every message of the run is in hand.
        """
        with self._lock:
            messages = list(self._buffer)
            self._buffer.clear()
            return messages, self._ended

    def stop(self) -> None:
        """Checkpoint and stop within a batch."""
        self._stop.set()

    def _send(self, message: WorkerMessage) -> bool:
        with self._lock:
            self._buffer.append(message)
        return True
