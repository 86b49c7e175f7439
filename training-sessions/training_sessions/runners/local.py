"""The local runner: each attempt in a spawned worker process on this machine.

- **Spawned and daemonic.** Spawn gives a clean interpreter (no forked CUDA state). If
  the service exits without a shutdown, multiprocessing sends the workers SIGTERM,
  which they turn into a checkpoint; the next start resumes them.
- **One pipe per worker**, not a shared queue: a worker killed mid-write cannot wedge
  a lock the others need, and waiting on the pipe and the process sentinel together
  notices both messages and the end of the process at once.
- A cooperative stop is a multiprocessing event the engine polls between batches.
- **Spread across GPUs.** Each attempt asking for ``auto``/``cuda`` is placed on the
  least loaded visible card not already training one of this runner's attempts, and its
  worker sees only that card (``CUDA_VISIBLE_DEVICES``, ``training_engine.gpu_placement``).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
import threading
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_ready
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as ProcessEvent

from training_engine.device_probe import current_probe
from training_engine.gpu_placement import GpuPlacer

from training_sessions.errors import LaunchError
from training_sessions.messages import WorkerMessage
from training_sessions.runners import Launch, Placement, StopReason
from training_sessions.worker import WorkerSpec, run_worker

logger = logging.getLogger(__name__)

# How long a finished worker is given to be reaped after its pipe closed.
REAP_SECONDS = 5.0


def this_machine() -> Placement:
    """This machine as a placement: its host name and the address that name resolves to."""
    hostname = socket.gethostname()
    try:
        address = socket.gethostbyname(hostname)
    except OSError:
        address = "127.0.0.1"
    return Placement(node=hostname, node_address=address)


class LocalRunHandle:
    """A worker process, its stop event and the read end of its pipe."""

    def __init__(
        self,
        process: BaseProcess,
        conn: Connection,
        stop: ProcessEvent,
        placement: Placement,
        gpu_uuid: str | None = None,
    ) -> None:
        self._process = process
        self._conn = conn
        self._stop = stop
        self._placement = placement
        self._conn_open = True
        self.gpu_uuid = gpu_uuid  # the card it was placed on, None: no card chosen

    @property
    def placement(self) -> Placement:
        return self._placement

    def receive(self, timeout: float) -> list[WorkerMessage]:
        waitables: list[object] = [self._process.sentinel]
        if self._conn_open:
            waitables.append(self._conn)
        wait_ready(waitables, timeout=timeout)  # type: ignore[arg-type]
        messages: list[WorkerMessage] = []
        while self._conn_open:
            try:
                if not self._conn.poll():
                    break
                messages.append(self._conn.recv())
            except (EOFError, OSError):
                self._conn_open = False
            except Exception:
                # A message cut short by a killed worker does not unpickle.
                logger.exception("unreadable message from worker %s", self._process.name)
                self._conn_open = False
        return messages

    def request_stop(self, reason: StopReason) -> None:
        # The worker tells "stop" from "shutdown" by nothing: its supervisor knows why.
        self._stop.set()

    def kill(self) -> None:
        self._process.kill()

    def finished(self) -> bool:
        # The pipe closes when the worker exits (or closes it just before): read to the end.
        return not self._conn_open and not self._process.is_alive()

    def exit_description(self) -> str | None:
        if not self.finished():
            return None
        self._process.join(timeout=REAP_SECONDS)
        code = self._process.exitcode
        if code == 0:
            return "worker exited without reporting a result"
        return f"worker exited with code {code}"

    def close(self) -> None:
        self._process.join(timeout=REAP_SECONDS)
        self._conn.close()


class LocalProcessRunner:
    """Starts each attempt in a spawned, daemonic worker process of this service."""

    def __init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._placement = this_machine()
        self._gpus = GpuPlacer(current_probe(), os.environ)
        self._handles: list[LocalRunHandle] = []  # live ones: the cards in use
        self._placing = threading.Lock()  # supervisors launch from their own threads

    def launch(self, launch: Launch) -> LocalRunHandle:
        settings = launch.job.strategy.training
        with self._placing:  # memory and NVML readings only, no process start
            self._handles = [handle for handle in self._handles if not handle.finished()]
            gpu = self._gpus.place(
                settings.device,
                deterministic=settings.deterministic,
                running_on=[handle.gpu_uuid for handle in self._handles],
            )
        stop = self._context.Event()
        receiver, sender = self._context.Pipe(duplex=False)
        spec = WorkerSpec(
            launch.training_id, launch.attempt, launch.job, launch.log_path, gpu.environment
        )
        process = self._context.Process(
            target=run_worker,
            args=(spec, stop, sender, os.getpid()),
            name=f"training-{launch.training_id}",
            # Daemonic: if the service exits without a shutdown, multiprocessing
            # terminates the workers (SIGTERM -> checkpoint), to be resumed later.
            daemon=True,
        )
        try:
            process.start()
        except OSError as exc:
            receiver.close()
            raise LaunchError(f"could not start a worker process: {exc}") from exc
        finally:
            sender.close()
        logger.info(
            "training %s: attempt %d started (pid %s%s)",
            launch.training_id,
            launch.attempt,
            process.pid,
            f", on card GPU-{gpu.card_uuid}" if gpu.card_uuid else "",
        )
        handle = LocalRunHandle(process, receiver, stop, self._placement, gpu.card_uuid)
        with self._placing:
            self._handles.append(handle)
        return handle
