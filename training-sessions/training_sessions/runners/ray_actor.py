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
import time
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
    """Sessions one after another on whichever node Ray placed this actor.

    ``idle_seconds``: an actor left without a session that long ends itself, so one that
    outlived its service (detached, the service killed) does not hold its GPU forever.
    """

    def __init__(self, setup: WorkerSetup, idle_seconds: float) -> None:
        os.environ.update(setup.environment)  # before CUDA starts: cuBLAS's determinism
        configure_process_logging()  # once: the actor's process is its own
        self._host = SessionHost(setup)  # torch and the engine imported now
        self._buffer: deque[WorkerMessage] = deque(maxlen=MAX_BUFFERED_MESSAGES)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._current: tuple[str, int] | None = None
        self._ended = True
        # A stop asked for a session whose run has not begun yet (calls to a threaded
        # actor may overtake one another).
        self._stop_before_run: tuple[str, int] | None = None
        self._idle_seconds = idle_seconds
        self._idle_since = time.monotonic()
        threading.Thread(target=self._end_when_idle, name="idle-watch", daemon=True).start()

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

        session = (spec.training_id, spec.attempt)
        with self._lock:
            # The previous session was drained to its end before this one was handed out.
            self._buffer.clear()
            self._stop.clear()
            if self._stop_before_run == session:
                self._stop.set()
            self._stop_before_run = None
            self._current = session
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
                self._idle_since = time.monotonic()

    def drain(self, training_id: str, attempt: int) -> tuple[list[WorkerMessage], bool]:
        """The messages the session sent since the last drain, and whether it has ended;
        nothing (not ended) while the actor still holds the previous one.

        Read under one lock: once it says ended, every message of the session is in hand.
        """
        with self._lock:
            if self._current != (training_id, attempt):
                return [], False  # its run() has not begun: calls may overtake one another
            messages = list(self._buffer)
            self._buffer.clear()
            return messages, self._ended

    def stop(self, training_id: str, attempt: int) -> None:
        """Checkpoint and stop the session within a batch (kept if its run has not begun)."""
        with self._lock:
            if self._current == (training_id, attempt):
                self._stop.set()
            else:
                self._stop_before_run = (training_id, attempt)

    def _end_when_idle(self) -> None:
        while True:
            time.sleep(min(5.0, self._idle_seconds))
            with self._lock:
                idle = self._ended and time.monotonic() - self._idle_since > self._idle_seconds
            if idle:
                logger.info("no session for %.0f s: this actor ends", self._idle_seconds)
                os._exit(0)

    def _send(self, message: WorkerMessage) -> bool:
        with self._lock:
            self._buffer.append(message)
        return True
