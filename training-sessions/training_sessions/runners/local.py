"""The local runner: each attempt in a worker process on this machine, kept warm.

- **Started clean, and daemonic.** On Linux a worker is forked by multiprocessing's fork
  server, a process started fresh (never a fork of the service, so no CUDA state) that
  has imported torch and the engine once: a new worker is ready in a fraction of a
  second instead of the few seconds those imports take. Elsewhere (macOS: Apple's
  frameworks are not safe across fork) and with ``worker_start: spawn``, a worker is a
  new interpreter; so from then on if the fork server cannot start. If the service exits
  without a shutdown, multiprocessing sends the workers SIGTERM, which they turn into a
  checkpoint; the next start resumes them.
- **Warm.** A worker whose session ended cleanly waits for the next one
  (:mod:`training_sessions.warm_worker`): its imports and its prepared data are kept. At
  most ``max_concurrent_jobs`` wait; one that failed, crashed, was killed or reached
  ``worker_max_sessions`` is never handed another session.
- **Threads follow the cores given.** Each worker's torch, OpenMP and MKL pools get
  :func:`session_threads` threads, set before they start, so sessions running side by
  side do not oversubscribe the cores.
- **One pipe per worker**, not a shared queue: a worker killed mid-write cannot wedge
  a lock the others need, and the pipe's end is the end of the process (its end of the
  pipe closes with it), so waiting on the pipe notices both messages and the worker's
  end at once, even when a dead fork server can no longer report the worker's status.
- A cooperative stop is a multiprocessing event the engine polls between batches; one
  per worker, cleared before each session it is handed.
- **Spread across GPUs.** Each attempt asking for ``auto``/``cuda`` is placed on the
  least loaded visible card not already training one of this runner's attempts, and its
  worker sees only that card (``CUDA_VISIBLE_DEVICES``, ``training_engine.gpu_placement``).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_ready
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as ProcessEvent

from training_engine.device_probe import current_probe
from training_engine.gpu_placement import GpuPlacer

from training_sessions.errors import LaunchError
from training_sessions.messages import WorkerMessage
from training_sessions.runners import Launch, Placement, StopReason
from training_sessions.types import RuntimeSettings, WorkerStart
from training_sessions.warm_worker import (
    SessionEnded,
    WorkerSetup,
    serve_sessions,
    thread_environment,
)
from training_sessions.worker import WorkerSpec

logger = logging.getLogger(__name__)

# How long a finished worker is given to be reaped after its pipe closed.
REAP_SECONDS = 5.0
THREADS_VARIABLE = "OMP_NUM_THREADS"
# What the fork server imports once, so that a worker forked from it has them loaded.
FORK_SERVER_PRELOAD = ["training_sessions.fork_server"]


def worker_context(start: WorkerStart) -> SpawnContext | ForkServerContext:
    """The multiprocessing context that starts workers: ``auto`` is the fork server on
    Linux, where forking a process that imported torch (but started nothing) is safe,
    and spawn elsewhere."""
    method = start
    if start == "auto":
        method = "forkserver" if sys.platform.startswith("linux") else "spawn"
    if method == "spawn":
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(FORK_SERVER_PRELOAD)
    return context


def session_threads(
    cpus_per_session: float | None,
    max_concurrent_jobs: int,
    environment: Mapping[str, str],
    cores: int,
) -> int:
    """The torch threads each worker gets.

    ``cpus_per_session`` when set; else the service's own ``OMP_NUM_THREADS`` when set
    (the operator's choice, inherited as before); else the cores shared evenly by the
    sessions that run at once, at least one each.
    """
    if cpus_per_session is not None:
        return max(1, int(cpus_per_session))  # Ray may be asked for a fraction of a core
    inherited = environment.get(THREADS_VARIABLE, "").strip()
    if inherited.isdigit() and int(inherited) > 0:
        return int(inherited)
    return max(1, cores // max(1, max_concurrent_jobs))


def available_cores() -> int:
    """The cores this process may run on (its affinity mask where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def this_machine() -> Placement:
    """This machine as a placement: its host name and the address that name resolves to."""
    hostname = socket.gethostname()
    try:
        address = socket.gethostbyname(hostname)
    except OSError:
        address = "127.0.0.1"
    return Placement(node=hostname, node_address=address)


class LocalWorker:
    """One worker process: its pipe (specs in, messages out), its stop event, its environment."""

    def __init__(
        self,
        process: BaseProcess,
        conn: Connection,
        stop: ProcessEvent,
        environment: dict[str, str],
    ) -> None:
        self.process = process
        self.conn = conn
        self.stop = stop
        # What it was started with: its own variables over the service's at that moment.
        self.environment = {**os.environ, **environment}

    def retire(self) -> None:
        """Tell it to exit (when it still listens), then reap it."""
        # It may have exited already, or its pipe be closed.
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)
        self.process.join(timeout=REAP_SECONDS)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=REAP_SECONDS)
        self.conn.close()


class LocalRunHandle:
    """One session on a worker: reads its messages until the worker says the session ended."""

    def __init__(
        self,
        worker: LocalWorker,
        placement: Placement,
        gpu_uuid: str | None = None,
        on_close: Callable[[LocalWorker, bool], None] | None = None,
    ) -> None:
        self._worker = worker
        self._process = worker.process
        self._conn = worker.conn
        self._placement = placement
        self._on_close = on_close
        self._conn_open = True
        self._ended: SessionEnded | None = None  # the worker's word that the session is over
        self._killed = False
        self._lock = threading.Lock()  # a stop never reaches the worker's next session
        self.gpu_uuid = gpu_uuid  # the card it was placed on, None: no card chosen

    @property
    def placement(self) -> Placement:
        return self._placement

    def receive(self, timeout: float) -> list[WorkerMessage]:
        if self._ended is not None:
            return []
        # The pipe ends when the worker does (its end closes with it), so it alone is
        # waited on while open: a forked worker's sentinel comes from the fork server and,
        # should that die, reads "ended" at once while the worker still trains.
        waitable = self._conn if self._conn_open else self._process.sentinel
        wait_ready([waitable], timeout=timeout)
        messages: list[WorkerMessage] = []
        while self._conn_open and self._ended is None:
            try:
                if not self._conn.poll():
                    break
                message = self._conn.recv()
            except (EOFError, OSError):
                self._conn_open = False
            except Exception:
                # A message cut short by a killed worker does not unpickle.
                logger.exception("unreadable message from worker %s", self._process.name)
                self._conn_open = False
            else:
                if isinstance(message, SessionEnded):
                    with self._lock:
                        self._ended = message
                else:
                    messages.append(message)
        return messages

    def request_stop(self, reason: StopReason) -> None:
        # The worker tells "stop" from "shutdown" by nothing: its supervisor knows why.
        with self._lock:
            if self._ended is None:
                self._worker.stop.set()

    def kill(self) -> None:
        self._killed = True
        if self._process.exitcode is not None and self._conn_open:
            # Its fork server is gone and reported it ended, but its pipe is open: the
            # process still runs under this pid (it holds the pipe's other end).
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._process.pid, signal.SIGKILL)  # type: ignore[arg-type]
            return
        self._process.kill()

    def finished(self) -> bool:
        if self._ended is not None:
            return True
        # The pipe closes when the worker exits (or closes it just before): read to the end.
        return not self._conn_open and not self._process.is_alive()

    def exit_description(self) -> str | None:
        if not self.finished():
            return None
        if self._ended is not None:
            return "worker ended the session without reporting a result"
        self._process.join(timeout=REAP_SECONDS)
        code = self._process.exitcode
        if code == 0:
            return "worker exited without reporting a result"
        return f"worker exited with code {code}"

    def close(self) -> None:
        reusable = self._ended is not None and self._ended.reusable and not self._killed
        if self._on_close is not None:
            self._on_close(self._worker, reusable)
        elif reusable:
            self._worker.retire()
        else:
            self._process.join(timeout=REAP_SECONDS)
            self._conn.close()


class LocalProcessRunner:
    """Runs each attempt in a worker process of this service, reusing warm ones.

    Args:
        threads: torch threads per worker (:func:`session_threads`; None: as the
            service's ``OMP_NUM_THREADS`` says, else every core).
        max_sessions_per_worker: sessions a worker runs before it is replaced (1: a
            fresh process for every session).
        max_idle_workers: warm workers kept waiting for a session.
        data_cache_bytes: prepared data each worker keeps (0: none).
        start: how worker processes start (:func:`worker_context`).
    """

    def __init__(
        self,
        *,
        threads: int | None = None,
        max_sessions_per_worker: int = 20,
        max_idle_workers: int = 1,
        data_cache_bytes: int = 0,
        start: WorkerStart = "auto",
    ) -> None:
        self._context = worker_context(start)
        self._placement = this_machine()
        self._gpus = GpuPlacer(current_probe(), os.environ)
        self._threads = threads or session_threads(None, 1, os.environ, available_cores())
        self._max_sessions = max_sessions_per_worker
        self._max_idle = max_idle_workers
        self._data_cache_bytes = data_cache_bytes
        self._handles: list[LocalRunHandle] = []  # live ones: the cards in use
        self._starting: list[str | None] = []  # the cards of launches not yet handed over
        self._idle: list[LocalWorker] = []  # oldest first
        self._closed = False
        self._placing = threading.Lock()  # supervisors launch from their own threads

    @classmethod
    def for_settings(cls, settings: RuntimeSettings) -> LocalProcessRunner:
        """The runner a service's settings describe."""
        return cls(
            threads=session_threads(
                settings.cpus_per_session,
                settings.max_concurrent_jobs,
                os.environ,
                available_cores(),
            ),
            max_sessions_per_worker=settings.worker_max_sessions,
            max_idle_workers=max(1, settings.max_concurrent_jobs),
            data_cache_bytes=settings.data_cache_bytes,
            start=settings.worker_start,
        )

    @property
    def threads(self) -> int:
        return self._threads

    def check_available(self) -> None:
        """This machine is always there: a launch can start now."""

    def launch(self, launch: Launch) -> LocalRunHandle:
        settings = launch.job.strategy.training
        with self._placing:  # memory and NVML readings only, no process start
            self._handles = [handle for handle in self._handles if not handle.finished()]
            gpu = self._gpus.place(
                settings.device,
                deterministic=settings.deterministic,
                running_on=[handle.gpu_uuid for handle in self._handles] + self._starting,
            )
            # Counted as running while its worker starts: a launch meanwhile goes elsewhere.
            self._starting.append(gpu.card_uuid)
            environment = {**thread_environment(self._threads), **gpu.environment}
            worker = self._take_idle(environment)
        handle: LocalRunHandle | None = None
        try:
            spec = WorkerSpec(
                launch.training_id, launch.attempt, launch.job, launch.log_path, environment
            )
            if worker is not None:
                worker = self._hand_over(worker, spec)  # None: it died while it waited
            if worker is None:
                worker = self._hand_over(self._spawn(environment), spec)
                if worker is None:
                    raise LaunchError("could not hand the session to a new worker process")
            handle = LocalRunHandle(worker, self._placement, gpu.card_uuid, self._release)
        finally:
            with self._placing:
                self._starting.remove(gpu.card_uuid)
                if handle is not None:
                    self._handles.append(handle)
        logger.info(
            "training %s: attempt %d started (pid %s%s)",
            launch.training_id,
            launch.attempt,
            worker.process.pid,
            f", on card GPU-{gpu.card_uuid}" if gpu.card_uuid else "",
        )
        return handle

    def close(self) -> None:
        """Retire the waiting workers; those still running end with their sessions."""
        with self._placing:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.retire()

    def _take_idle(self, own: dict[str, str]) -> LocalWorker | None:
        """A live waiting worker started with the environment a new one would get now
        (its CUDA card, its threads, and whatever the service's environment holds)."""
        environment = {**os.environ, **own}
        for worker in list(self._idle):
            if not worker.process.is_alive():
                self._idle.remove(worker)
                worker.conn.close()
            elif worker.environment == environment:
                self._idle.remove(worker)
                return worker
        return None

    def _hand_over(self, worker: LocalWorker, spec: WorkerSpec) -> LocalWorker | None:
        """Give the worker its session; None when it turned out to be gone."""
        worker.stop.clear()  # the previous session's stop is not this one's
        worker.process.name = f"training-{spec.training_id}"
        try:
            worker.conn.send(spec)
        except (OSError, ValueError):
            worker.retire()
            return None
        return worker

    def _spawn(self, environment: dict[str, str]) -> LocalWorker:
        stop = self._context.Event()
        ours, theirs = self._context.Pipe(duplex=True)
        # The whole environment a spawned worker would inherit now: a forked one has the
        # fork server's, from when that started.
        setup = WorkerSetup(
            environment={**os.environ, **environment},
            threads=self._threads,
            data_cache_bytes=self._data_cache_bytes,
            max_sessions=self._max_sessions,
            whole_environment=True,
        )
        process = self._context.Process(
            target=serve_sessions,
            args=(setup, stop, theirs, os.getpid()),
            name="training-worker",
            # Daemonic: if the service exits without a shutdown, multiprocessing
            # terminates the workers (SIGTERM -> checkpoint), to be resumed later.
            daemon=True,
        )
        try:
            process.start()
        except Exception as exc:
            ours.close()
            theirs.close()
            if isinstance(self._context, ForkServerContext):
                # The fork server could not start (a preload failed, or it was killed while
                # loading: its own output says why). Workers are spawned from now on.
                logger.warning(
                    "the fork server did not start a worker (%s: %s); spawning workers "
                    "instead (worker_start: spawn)",
                    type(exc).__name__,
                    exc,
                )
                self._context = worker_context("spawn")
                return self._spawn(environment)
            raise LaunchError(f"could not start a worker process: {exc}") from exc
        theirs.close()
        return LocalWorker(process, ours, stop, environment)

    def _release(self, worker: LocalWorker, reusable: bool) -> None:
        """A session's handle is closed: keep its worker warm, or let it go."""
        with self._placing:
            keep = reusable and not self._closed and worker.process.is_alive()
            if keep:
                self._idle.append(worker)
                excess = self._idle[: max(0, len(self._idle) - self._max_idle)]
                del self._idle[: len(excess)]
            else:
                excess = [worker]
        for retired in excess:
            retired.retire()
