"""The Ray runner: each attempt of a session as one Ray actor, on whichever node has room.

Imported only when the service's executor is ``ray`` (the ``ray`` extra); the local
executor never imports Ray.

- **Warm actors**: each attempt runs on a detached, named actor (``session-worker-...``
  in the runner's namespace) asking for ``gpus_per_session`` (a fraction packs several
  on one GPU) and ``cpus_per_session``; Ray picks the node, the actor reports it
  (:class:`~training_sessions.runners.Placement`: node id hex, node address). An actor
  whose session ended cleanly waits for the next one (at most ``max_idle_actors`` wait,
  each holding its resources; ``sessions_per_actor`` sessions each): its imports and
  prepared data are kept, as a local warm worker keeps them. A session that asks for
  another environment ends the waiting actors first, and any other end (a failure, a
  kill, a lost node, the service stopping) ends the actor.
- **Messages** wait in the actor's buffer; the handle keeps one ``drain`` call in
  flight and hands what it returns to the supervisor. A stop sets the actor's cancel
  flag, polled by the engine between batches.
- **A node that dies** takes its actor with it: the handle reports
  :class:`~training_sessions.messages.Lost` (not a failure) and the service queues the
  session again, first in line; the next attempt resumes from the checkpoint on the
  shared storage, on another node. An actor that dies on a live node is a failure.
- **Detached**: a host service killed without a shutdown leaves its actors training
  or waiting. The next start resumes those sessions as a new attempt; before each launch
  this runner asks every actor of its namespace it does not hold what it holds: an older
  attempt of the session is asked to checkpoint and stop, then ended (one session never
  trains twice at once); an idle one is ended (it would hold its GPU forever).
- **The head unreachable**: calls in flight time out and are tried again; a running
  session is not declared lost for it. A session about to leave the queue waits in it
  (:class:`~training_sessions.errors.RunnerUnavailableError`) until the head answers;
  node-table reads give up after ``query_seconds``. A head away longer than Ray's
  reconnect timeout, or restarted, ends this process (Ray's doing): its unit starts it
  again and it resumes its sessions (docs/cluster.md).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, cast

import ray
from ray.exceptions import ActorUnavailableError, RayActorError, RayError

from training_sessions.errors import LaunchError, RunnerUnavailableError
from training_sessions.messages import Lost, WorkerMessage
from training_sessions.runners import ClusterNode, Launch, Placement, StopReason
from training_sessions.runners.ray_actor import SessionActor
from training_sessions.warm_worker import WorkerSetup
from training_sessions.worker import WorkerSpec

logger = logging.getLogger(__name__)

# Threads of one actor: its run, a drain and a stop at once.
ACTOR_THREADS = 4
# How long Ray may take to mark the node of a dead actor dead (its health checks).
NODE_DEATH_WAIT_SECONDS = 30.0
NODE_POLL_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class RayClusterSettings:
    """Where the cluster is and what one session asks of it.

    ``address``: ``auto`` (a node of the cluster runs on this machine), ``host:6379``
    (the head's GCS) or ``ray://host:10001`` (Ray Client).
    """

    address: str = "auto"
    namespace: str = "training-host"
    gpus_per_session: float = 1.0
    cpus_per_session: float = 1.0
    # How long an older attempt found at launch gets to checkpoint and stop.
    takeover_grace_seconds: float = 30.0
    # How long a read of the node table (the cluster view, the check before a launch) may
    # take before the cluster counts as unreachable for it; joining may take longer.
    query_seconds: float = 5.0
    # Sessions one actor runs before it is replaced (memory growth stays bounded).
    sessions_per_actor: int = 20
    # Actors kept waiting for the next session; each holds its CPUs and GPUs meanwhile.
    max_idle_actors: int = 1
    # The prepared datasets an actor keeps between sessions (the host's default).
    data_cache_bytes: int = 512 * 2**20
    # An actor left without a session this long ends itself (one that outlived a killed
    # service would otherwise hold its GPU for good).
    idle_actor_seconds: float = 300.0


# Every actor of this runner is named so: a service that starts again finds the actors an
# earlier run of it left (detached, they outlive it).
ACTOR_PREFIX = "session-worker-"
# How long a stray actor gets to say what it holds.
ASK_SECONDS = 5.0


def new_actor_name() -> str:
    return f"{ACTOR_PREFIX}{uuid.uuid4().hex[:16]}"


@dataclass(frozen=True, slots=True)
class _IdleActor:
    actor: Any
    name: str
    environment: tuple[tuple[str, str], ...]
    since: float  # time.monotonic() when its session ended


class RayRunHandle:
    """One attempt on an actor: its ``run`` call and the one ``drain`` call in flight.

    ``give_back`` takes the actor once the session ended cleanly (the runner may hand it
    the next session); otherwise the handle ends the actor when it is closed.
    """

    def __init__(
        self,
        actor: Any,
        name: str,
        spec: WorkerSpec,
        give_back: Callable[[Any, str, dict[str, str]], None],
    ) -> None:
        self._actor = actor
        self._name = name
        self._training_id = spec.training_id
        self._attempt = spec.attempt
        self._environment = dict(spec.environment)
        self._give_back = give_back
        self._run = actor.run.remote(spec)  # kept: its object keeps the call alive
        self._where: Any = actor.where.remote()
        self._placement: Placement | None = None
        self._drain: Any = None
        self._ended = False
        self._killed = False
        self._exit: str | None = None
        self._unreachable_since: float | None = None

    @property
    def placement(self) -> Placement | None:
        if self._placement is None and self._where is not None:
            try:
                ready, _ = ray.wait([self._where], timeout=0)
                if ready:
                    self._placement = ray.get(self._where)
            except RayError:
                self._where = None  # the actor is gone: receive() says how
        return self._placement

    def receive(self, timeout: float) -> list[WorkerMessage]:
        if self._ended:
            time.sleep(timeout)
            return []
        if self._drain is None:
            self._drain = self._actor.drain.remote(self._training_id, self._attempt)
        try:
            ready, _ = ray.wait([self._drain], timeout=timeout)
            if not ready:
                return []  # still placing the actor, or the head is slow to answer
            drain, self._drain = self._drain, None
            messages, ended = ray.get(drain)
        except ActorUnavailableError as exc:
            self._note_unreachable(exc)
            return []
        except RayActorError as exc:
            return self._actor_gone(exc)
        except (RayError, ConnectionError) as exc:
            # The head or the node is unreachable for now: not a lost run.
            self._drain = None
            self._note_unreachable(exc)
            time.sleep(timeout)
            return []
        if self._unreachable_since is not None:
            logger.info("%s: reachable again", self._name)
            self._unreachable_since = None
        self._ended = ended
        if not messages and not ended:
            time.sleep(timeout)  # the actor answered at once: poll at the supervisor's pace
        return list(messages)

    def request_stop(self, reason: StopReason) -> None:
        # The actor tells "stop" from "shutdown" by nothing: its supervisor knows why.
        with contextlib.suppress(RayError):
            self._actor.stop.remote(self._training_id, self._attempt)

    def kill(self) -> None:
        self._killed = True
        with contextlib.suppress(RayError, ValueError):
            ray.kill(self._actor, no_restart=True)

    def finished(self) -> bool:
        return self._ended

    def exit_description(self) -> str | None:
        return self._exit if self._ended else None

    def close(self) -> None:
        if self._reusable():
            self._give_back(self._actor, self._name, self._environment)
            return
        # Detached: it lives until ended, result read or not.
        with contextlib.suppress(RayError, ValueError):
            ray.kill(self._actor, no_restart=True)

    def _reusable(self) -> bool:
        """Ended on its own, every message read, and the actor's host says it may go on."""
        if not self._ended or self._killed or self._exit is not None:
            return False
        try:
            return bool(ray.get(self._run, timeout=ASK_SECONDS))
        except (RayError, ConnectionError):
            return False

    def _note_unreachable(self, exc: BaseException) -> None:
        if self._unreachable_since is None:
            self._unreachable_since = time.monotonic()
            logger.warning("%s: unreachable for now (%s); waiting", self._name, exc)

    def _actor_gone(self, exc: RayActorError) -> list[WorkerMessage]:
        """The actor died: by our kill, with its node (lost), or on its own (failed)."""
        self._ended = True
        if self._killed:
            self._exit = "actor killed"
            return []
        node = self.placement
        if node is not None and _node_died(node.node):
            return [Lost(self._attempt, f"node {node.node} ({node.node_address}) was lost")]
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        self._exit = f"actor {self._name} died: {first_line}"
        return []


def _answers(actor: Any) -> bool:
    """Whether a waiting actor is still there (it ends itself after idle_actor_seconds)."""
    try:
        ray.get(actor.current.remote(), timeout=ASK_SECONDS)
    except (RayError, ConnectionError):
        return False
    return True


def _node_died(node_id: str) -> bool:
    """Whether Ray declares the node dead, waiting for its health checks to decide."""
    deadline = time.monotonic() + NODE_DEATH_WAIT_SECONDS
    while True:
        try:
            alive = {entry["NodeID"]: bool(entry["Alive"]) for entry in ray.nodes()}
        except RayError:
            alive = {}
        if not alive.get(node_id, False) and node_id in alive:
            return True
        if time.monotonic() >= deadline:
            return node_id not in alive and bool(alive)
        time.sleep(NODE_POLL_SECONDS)


class RayRunner:
    """Runs each attempt on a Ray actor on the cluster at ``settings.address``: a warm one
    kept from an earlier session when there is one, a new one otherwise."""

    def __init__(self, settings: RayClusterSettings) -> None:
        self.settings = settings
        self._connecting = threading.Lock()
        # Actors waiting for a session, and the names of every actor this run holds.
        self._actors_lock = threading.Lock()
        self._idle: list[_IdleActor] = []
        self._own: set[str] = set()
        self._closed = False
        # Node-table reads run on a thread of their own, one at a time: with the head away
        # Ray's calls block (up to a minute), and neither a request nor a supervisor may
        # wait that long. A daemon thread: a read stuck in Ray never holds up an exit.
        self._reading: Future[list[dict[str, Any]]] | None = None
        self._reading_lock = threading.Lock()

    def connect(self) -> None:
        """Join the cluster as a driver (once). Raises RunnerUnavailableError when it cannot."""
        with self._connecting:
            if ray.is_initialized():
                return
            try:
                ray.init(
                    address=self.settings.address,
                    namespace=self.settings.namespace,
                    log_to_driver=False,
                    configure_logging=False,
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise RunnerUnavailableError(
                    f"the Ray cluster at {self.settings.address} is unreachable: {exc}"
                ) from exc

    def check_available(self) -> None:
        """Joined, and the head answers (its node table)."""
        self.nodes()

    def launch(self, launch: Launch) -> RayRunHandle:
        self.connect()
        self._end_older_attempts(launch.training_id, launch.attempt)
        settings = launch.job.strategy.training
        from training_engine.gpu_placement import worker_environment

        spec = WorkerSpec(
            launch.training_id,
            launch.attempt,
            launch.job,
            launch.log_path,
            worker_environment(None, deterministic=settings.deterministic),
        )
        idle = self._take_idle(spec.environment)
        if idle is not None:
            actor, name, how = idle.actor, idle.name, "a warm actor"
        else:
            (actor, name), how = self._start_actor(spec.environment), "a new actor"
        logger.info(
            "training %s: attempt %d submitted to Ray on %s (%s)",
            launch.training_id,
            launch.attempt,
            how,
            name,
        )
        return RayRunHandle(actor, name, spec, self._give_back)

    def _start_actor(self, environment: dict[str, str]) -> tuple[Any, str]:
        name = new_actor_name()
        setup = WorkerSetup(
            environment=dict(environment),
            threads=max(1, int(self.settings.cpus_per_session)),
            data_cache_bytes=self.settings.data_cache_bytes,
            max_sessions=self.settings.sessions_per_actor,
        )
        try:
            actor = (
                ray.remote(SessionActor)
                .options(
                    name=name,
                    namespace=self.settings.namespace,
                    lifetime="detached",
                    num_gpus=self.settings.gpus_per_session,
                    num_cpus=self.settings.cpus_per_session,
                    max_restarts=0,
                    max_task_retries=0,
                    max_concurrency=ACTOR_THREADS,
                )
                .remote(setup, self.settings.idle_actor_seconds)
            )
        except (RayError, ValueError) as exc:
            raise LaunchError(f"Ray refused the session's actor: {exc}") from exc
        with self._actors_lock:
            self._own.add(name)
        return actor, name

    def _take_idle(self, environment: dict[str, str]) -> _IdleActor | None:
        """A waiting actor started with ``environment``; the others end (they hold
        resources a new actor may need)."""
        wanted = tuple(sorted(environment.items()))
        with self._actors_lock:
            idle, self._idle = self._idle, []
        taken = None
        for candidate in idle:
            # Taken well before the actor would end itself for idleness.
            fresh = time.monotonic() - candidate.since < self.settings.idle_actor_seconds / 2
            if (
                taken is None
                and fresh
                and candidate.environment == wanted
                and _answers(candidate.actor)
            ):
                taken = candidate
            else:
                self._end_actor(candidate.actor, candidate.name)
        return taken

    def _give_back(self, actor: Any, name: str, environment: dict[str, str]) -> None:
        """A session ended cleanly on ``actor``: keep it for the next one, or end it."""
        entry = _IdleActor(actor, name, tuple(sorted(environment.items())), time.monotonic())
        with self._actors_lock:
            keep = not self._closed and len(self._idle) < self.settings.max_idle_actors
            if keep:
                self._idle.append(entry)
        if not keep:
            self._end_actor(actor, name)

    def _end_actor(self, actor: Any, name: str) -> None:
        with self._actors_lock:
            self._own.discard(name)
        with contextlib.suppress(RayError, ValueError):
            ray.kill(actor, no_restart=True)

    def close(self) -> None:
        """End the actors waiting for a session; running ones end with their sessions."""
        with self._actors_lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for entry in idle:
            self._end_actor(entry.actor, entry.name)

    def nodes(self) -> list[ClusterNode]:
        """Every node Ray knows, alive or not.

        Raises:
            RunnerUnavailableError: the cluster cannot be joined, or its head did not answer
                within ``query_seconds`` (a read still in flight is waited on, never doubled).
        """
        with self._reading_lock:
            if self._reading is None or self._reading.done():
                self._reading = Future()
                threading.Thread(
                    target=self._read_node_table, args=(self._reading,), daemon=True
                ).start()
            reading = self._reading
        try:
            entries = reading.result(timeout=self.settings.query_seconds)
        except FutureTimeout:
            raise RunnerUnavailableError(
                f"the Ray cluster at {self.settings.address} does not answer "
                f"(no node table within {self.settings.query_seconds:g} s)"
            ) from None
        return [
            ClusterNode(
                node=entry["NodeID"],
                node_address=entry.get("NodeManagerAddress", ""),
                alive=bool(entry.get("Alive")),
                cpus=float(entry.get("Resources", {}).get("CPU", 0.0)),
                gpus=float(entry.get("Resources", {}).get("GPU", 0.0)),
                memory_bytes=int(entry.get("Resources", {}).get("memory", 0)),
            )
            for entry in entries
        ]

    def _read_node_table(self, reading: Future[list[dict[str, Any]]]) -> None:
        try:
            self.connect()
            reading.set_result(list(ray.nodes()))
        except RayError as exc:
            reading.set_exception(RunnerUnavailableError(f"the Ray cluster does not answer: {exc}"))
        except BaseException as exc:  # handed to whoever waits on the read
            reading.set_exception(exc)

    def _end_older_attempts(self, training_id: str, attempt: int) -> None:
        """End what an earlier run of this service left on the cluster (detached actors
        outlive a service killed without a shutdown): an older attempt of this session
        is asked to checkpoint and stop first, so the new one resumes alone; an actor
        that holds nothing, or a session that ended, just ends. Actors running another
        session are left to that session's own launch."""
        try:
            actors = ray.util.list_named_actors(all_namespaces=True)
        except RayError as exc:
            raise RunnerUnavailableError(f"could not list the cluster's actors: {exc}") from exc
        with self._actors_lock:
            own = set(self._own)
        for entry in actors:
            name = entry["name"]
            if entry["namespace"] != self.settings.namespace or name in own:
                continue
            if not name.startswith(ACTOR_PREFIX):
                continue
            try:
                stray = ray.get_actor(name, namespace=self.settings.namespace)
                answer: Any = ray.get(stray.current.remote(), timeout=ASK_SECONDS)
                holds = cast("tuple[str, int, bool] | None", answer)
            except (RayError, ValueError):
                continue  # ended meanwhile, or not answering: its own session's launch
            if holds is None or holds[2]:
                logger.info("ending %s, left idle by an earlier run", name)
                self._end_actor(stray, name)
            elif holds[0] == training_id and holds[1] < attempt:
                logger.warning(
                    "training %s: stopping %s (attempt %d), left by an earlier run",
                    training_id,
                    name,
                    holds[1],
                )
                self._stop_and_end(stray, name, training_id, holds[1])

    def _stop_and_end(self, actor: Any, name: str, training_id: str, attempt: int) -> None:
        """Ask ``attempt`` on ``actor`` to checkpoint and stop, wait for it, end the actor."""
        deadline = time.monotonic() + self.settings.takeover_grace_seconds
        with contextlib.suppress(RayError):
            ray.get(
                actor.stop.remote(training_id, attempt),
                timeout=self.settings.takeover_grace_seconds,
            )
            while time.monotonic() < deadline:
                remaining = max(0.1, deadline - time.monotonic())
                _messages, ended = ray.get(
                    actor.drain.remote(training_id, attempt), timeout=remaining
                )
                if ended:
                    break
                time.sleep(NODE_POLL_SECONDS)
        self._end_actor(actor, name)
