"""The runner seam: where and how a session's training runs.

A :class:`SessionRunner` starts one attempt of a session from a :class:`Launch` and
hands back a :class:`RunHandle`, the supervisor's only way to reach the run. One
implementation today, :class:`~training_sessions.runners.local.LocalProcessRunner` (a
spawned worker process on this machine); a second one can run the session on another
machine (a Ray task or actor) without a change above this seam. So nothing here names
a PID, a pipe, a process sentinel or a multiprocessing event: a handle offers messages,
a cooperative stop, a kill, whether the run has ended, why it ended without a result,
and where it runs.

The service picks its runner once, at construction; a supervisor never asks where its
session runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from training_engine.job import TrainingJob

from training_sessions.messages import WorkerMessage

# "stop": a client stopped the session (it ends cancelled); "shutdown": the service is
# stopping (it ends interrupted, to be resumed at the next start).
StopReason = Literal["stop", "shutdown"]


@dataclass(frozen=True, slots=True)
class Launch:
    """One attempt of a session: everything a runner needs to start it.

    ``job`` is the engine job built from the job stored at submit (never parsed again);
    ``attempt`` stamps every message of this run; ``log_path`` is the session's log file
    (None: no log file).
    """

    training_id: str
    attempt: int
    job: TrainingJob
    log_path: Path | None = None


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a run executes: the node's id and an address it is reached at."""

    node: str
    node_address: str


class RunHandle(Protocol):
    """One launched run, owned by one supervisor; every method returns promptly."""

    @property
    def placement(self) -> Placement | None:
        """Where the run executes; None until the runner knows."""
        ...

    def receive(self, timeout: float) -> list[WorkerMessage]:
        """The messages the run sent since the last call, waiting up to ``timeout`` s for one."""
        ...

    def request_stop(self, reason: StopReason) -> None:
        """Ask the run to checkpoint and stop; it does so within a batch."""
        ...

    def kill(self) -> None:
        """End the run now (it checkpoints nothing)."""
        ...

    def finished(self) -> bool:
        """True once the run has ended and every message it sent has been received."""
        ...

    def exit_description(self) -> str | None:
        """Once finished, how it ended (``worker exited with code -9``); None before."""
        ...

    def close(self) -> None:
        """Release what the handle holds; the run must have finished or been killed."""
        ...


@dataclass(frozen=True, slots=True)
class ClusterNode:
    """One machine of a cluster as its scheduler reports it."""

    node: str
    node_address: str
    alive: bool
    cpus: float
    gpus: float
    memory_bytes: int


class SessionRunner(Protocol):
    """Starts runs; chosen once per service."""

    def check_available(self) -> None:
        """Return when a launch could start now; called before a session leaves the queue.

        Raises:
            RunnerUnavailableError: not now (the cluster does not answer): the session
                stays queued and the check is made again.
        """
        ...

    def launch(self, launch: Launch) -> RunHandle:
        """Start one attempt of a session.

        Raises:
            RunnerUnavailableError: the runner became unavailable (the session is queued
                again, first in line).
            LaunchError: the run could not be started (the session fails, saying why).
        """
        ...

    def close(self) -> None:
        """Release what the runner keeps between runs (warm workers); called at shutdown."""
        ...


@runtime_checkable
class ClusterRunner(SessionRunner, Protocol):
    """A runner whose sessions run on the nodes of a cluster, which it can list."""

    def nodes(self) -> list[ClusterNode]:
        """Every node the cluster knows, alive or not.

        Raises:
            LaunchError: the cluster cannot be reached.
        """
        ...


__all__ = [
    "ClusterNode",
    "ClusterRunner",
    "Launch",
    "Placement",
    "RunHandle",
    "SessionRunner",
    "StopReason",
]
