"""What runs on a Ray node: a :class:`SessionActor`, one warm worker running sessions in turn.

The actor holds a :class:`~training_sessions.warm_worker.SessionHost`, as a local worker
process does: torch and the engine are imported once, when the actor starts, and the
prepared datasets are cached between sessions (keyed by every input). Each session
trains through :func:`~training_sessions.worker.train_session`, exactly as a local
worker does; what it reports waits in a bounded buffer that the service's handle drains
(:meth:`SessionActor.drain`); a stop sets the flag the engine polls between batches.
Its methods run in the actor's threads (``max_concurrency``), so a drain or a stop is
answered while :meth:`SessionActor.run` trains.

The runner hands the actor another session only after a clean end (the host's rule:
no failure, no shutdown, sessions left); otherwise it ends the actor. It is a plain
class: :mod:`training_sessions.runners.ray_cluster` makes it a Ray actor. Ray sets
``CUDA_VISIBLE_DEVICES`` to the GPUs it assigned, so ``cuda`` is that card.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque

from training_sessions.messages import WorkerMessage
from training_sessions.runners import Placement
from training_sessions.warm_worker import SessionHost, WorkerSetup
from training_sessions.worker import WorkerCancel, WorkerSpec, configure_process_logging

logger = logging.getLogger(__name__)

# Messages kept for a service that does not drain (restarting): the oldest go first,
# the result, sent last, stays.
MAX_BUFFERED_MESSAGES = 10_000


class SessionActor:
    """Sessions one after another on whichever node Ray placed this actor."""

    def __init__(self, setup: WorkerSetup) -> None:
        os.environ.update(setup.environment)  # before CUDA starts: cuBLAS's determinism
        configure_process_logging()  # once: the actor's process is its own
        self._host = SessionHost(setup)  # torch and the engine imported now
        self._buffer: deque[WorkerMessage] = deque(maxlen=MAX_BUFFERED_MESSAGES)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._current: tuple[str, int] | None = None
        self._ended = True

    def where(self) -> Placement:
        """This actor's node: Ray's node id (hex) and the node's address."""
        import ray

        return Placement(
            node=ray.get_runtime_context().get_node_id(),
            node_address=ray.util.get_node_ip_address(),
        )

    def current(self) -> tuple[str, int, bool] | None:
        """The session it holds (training id, attempt, whether it ended); None before any."""
        with self._lock:
            if self._current is None:
                return None
            return (*self._current, self._ended)

    def run(self, spec: WorkerSpec) -> bool:
        """Train one attempt; its messages wait in the buffer for :meth:`drain`.

        Returns:
            Whether the actor may take another session (a clean end, sessions left).
        """
        import ray

        with self._lock:
            # The previous session was drained to its end before this one was handed out.
            self._buffer.clear()
            self._stop.clear()
            self._current = (spec.training_id, spec.attempt)
            self._ended = False
        logger.info(
            "training %s: attempt %d on node %s (GPUs %s)",
            spec.training_id,
            spec.attempt,
            ray.get_runtime_context().get_node_id(),
            ray.get_gpu_ids() or "none",
        )
        try:
            return self._host.run(spec, WorkerCancel(self._stop), self._send)
        finally:
            with self._lock:
                self._ended = True

    def drain(self) -> tuple[list[WorkerMessage], bool]:
        """The messages sent since the last drain, and whether the session has ended.

        Read under one lock: once it says ended, every message of the session is in hand.
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
