"""A worker process that stays warm: one session after another, imports and data kept.

Starting a worker costs more than a small training: a fresh interpreter, torch, pandas
and the engine imported, the data read and its features computed. The local runner
therefore keeps a worker process once its session is over and hands it the next one.
What a worker keeps between sessions is only what cannot leak from one to the next:

- its imports, and the torch thread count fixed when it started (:func:`apply_threads`);
- its environment (``CUDA_VISIBLE_DEVICES``...): fixed for its life, so the runner
  reuses it only for a session that asks for the same;
- the prepared datasets (:class:`~training_engine.prepared_cache.PreparedDataCache`),
  keyed by every input, so a changed file or another feature set is never served the
  earlier arrays.

Everything else is per session: the stop flag (cleared by the runner before it hands
out a session), the SIGTERM target, the parent check, the log handlers (the session's
file and its supervisor, :func:`~training_sessions.worker.session_logging`). A session
that failed or crashed, or ended by SIGTERM or because the service is gone, ends its
worker; so does the ``max_sessions``-th session (memory growth stays bounded).

:class:`SessionHost` is the part with no process in it, for a runner whose workers are
long-lived already (a Ray actor holds one). :func:`serve_sessions` is the local
process's loop around it: a spec in through the pipe, messages out, then
:class:`SessionEnded`; ``None`` or a closed pipe ends the process.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from types import FrameType
from typing import TYPE_CHECKING

from training_engine.cancellation import CancellationSignal

from training_sessions.messages import Result
from training_sessions.process_watch import service_watch
from training_sessions.worker import (
    PipeSender,
    Send,
    WorkerCancel,
    WorkerSpec,
    configure_process_logging,
    session_logging,
    train_session,
)

if TYPE_CHECKING:
    from training_engine.prepared_cache import PreparedDataCache

logger = logging.getLogger(__name__)

# Libraries that size their thread pools from these when they load (torch's OpenMP, MKL).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
# Cancel reasons after which the process must not take another session.
ENDING_REASONS = frozenset({"shutdown", "parent exited"})


@dataclass(frozen=True, slots=True)
class WorkerSetup:
    """What a worker process starts with and keeps for its life.

    ``environment`` is set before torch and CUDA load (``CUDA_VISIBLE_DEVICES``,
    ``CUBLAS_WORKSPACE_CONFIG``, the thread variables); ``threads`` is torch's intra-
    and inter-op thread count; ``max_sessions`` sessions at most, then it exits.
    """

    environment: dict[str, str] = field(default_factory=dict)
    threads: int = 1
    data_cache_bytes: int = 0
    max_sessions: int = 1
    # ``environment`` is the process's whole environment, not additions to what it has (a
    # worker forked by the fork server has the fork server's, not the service's of now).
    whole_environment: bool = False


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """The worker's last word on a session: sent after its result or failure.

    ``reusable``: the worker can take another session (it ended cleanly and has
    sessions left); otherwise it exits right after.
    """

    attempt: int
    reusable: bool


def thread_environment(threads: int) -> dict[str, str]:
    """The variables that give a process's OpenMP and MKL pools ``threads`` threads."""
    return {name: str(threads) for name in THREAD_VARIABLES}


def apply_threads(threads: int) -> tuple[int, int]:
    """Give torch ``threads`` intra-op and inter-op threads, before it does any work.

    Returns:
        What torch reports afterwards: (intra-op threads, inter-op threads).
    """
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:
        # Settable once per process, before any inter-op work: a second call changes nothing.
        logger.debug("torch's inter-op threads were set already")
    return torch.get_num_threads(), torch.get_num_interop_threads()


class SessionHost:
    """Runs sessions one after another in this process, with what they may share.

    Args:
        setup: the thread count to apply and the cache size; the environment must
            already be in place (it is read when torch loads).
    """

    def __init__(self, setup: WorkerSetup) -> None:
        self._setup = setup
        self.threads = apply_threads(setup.threads)
        # Imported now, once: the first session pays no import either.
        import training_engine.trainer  # noqa: F401
        from training_engine.prepared_cache import PreparedDataCache

        self.data_cache: PreparedDataCache = PreparedDataCache(setup.data_cache_bytes)
        self.sessions_run = 0

    def run(
        self,
        spec: WorkerSpec,
        cancel: WorkerCancel,
        send: Send,
        supervisor_alive: Callable[[], bool] = lambda: True,
    ) -> bool:
        """Train one session with its own log handlers; True when the host may take another."""
        self.sessions_run += 1
        with session_logging(spec, send):
            logger.info(
                "training %s: worker started (pid %d, attempt %d, session %d of this worker, "
                "torch threads %d intra-op / %d inter-op%s)",
                spec.training_id,
                os.getpid(),
                spec.attempt,
                self.sessions_run,
                *self.threads,
                "".join(f", {name}={value}" for name, value in sorted(spec.environment.items())),
            )
            last = train_session(spec, cancel, send, supervisor_alive, self.data_cache)
        clean = isinstance(last, Result) and cancel.reason not in ENDING_REASONS
        return clean and self.sessions_run < self._setup.max_sessions


class _SigtermTarget:
    """SIGTERM cancels the session in progress (it checkpoints); an idle worker just exits."""

    def __init__(self) -> None:
        self.session: WorkerCancel | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.session is None:
            raise SystemExit(0)
        self.session.on_sigterm(signum, frame)


def serve_sessions(
    setup: WorkerSetup, stop_requested: CancellationSignal, conn: Connection, parent_pid: int
) -> None:
    """Entry point of a local worker process: sessions from ``conn`` until told to end.

    ``parent_pid`` is the service's pid: a session stops (checkpointed) once it is gone.
    """
    # Before torch and CUDA load or start: they read these once, when they start. (A worker
    # forked by the fork server has torch loaded already, but neither CUDA nor a thread pool
    # started: CUDA_VISIBLE_DEVICES and cuBLAS's settings still apply, threads are set below.)
    if setup.whole_environment:
        os.environ.clear()
    os.environ.update(setup.environment)
    service_alive = service_watch(parent_pid)
    # Ctrl-C in a terminal reaches the whole process group: the parent decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sigterm = _SigtermTarget()
    # systemd/launchd may signal the whole group: checkpoint and stop, to be resumed.
    signal.signal(signal.SIGTERM, sigterm)
    configure_process_logging()
    send = PipeSender(conn)
    try:
        host = SessionHost(setup)
        while True:
            try:
                spec: WorkerSpec | None = conn.recv()
            except (EOFError, OSError):
                return  # the service is gone
            if spec is None:
                return
            cancel = WorkerCancel(stop_requested)
            sigterm.session = cancel
            reusable = host.run(spec, cancel, send, service_alive)
            sigterm.session = None
            if not send(SessionEnded(spec.attempt, reusable)) or not reusable:
                return
    finally:
        conn.close()
