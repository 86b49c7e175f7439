"""The runner behind the host's sessions, picked once from ``Settings.executor``.

``local`` (the default): the session runtime's own worker processes; Ray is never
imported. ``ray``: :class:`training_sessions.runners.ray_cluster.RayRunner`, which needs
the ``ray`` extra (``pip install ".[ray]"``).
"""

from __future__ import annotations

from training_sessions.runners import SessionRunner

from training_host.config import Settings
from training_host.errors import ExecutorUnavailableError

# What a session asks of Ray when cpus_per_session is unset.
RAY_CPUS_PER_SESSION = 1.0


def session_runner(settings: Settings) -> SessionRunner | None:
    """The runner for ``settings.executor``; None: the runtime's local default."""
    if settings.executor == "local":
        return None
    try:
        from training_sessions.runners.ray_cluster import RayClusterSettings, RayRunner
    except ImportError as exc:
        raise ExecutorUnavailableError(
            f"executor 'ray' needs Ray installed (pip install '.[ray]'): {exc}"
        ) from exc
    return RayRunner(
        RayClusterSettings(
            address=settings.ray_address,
            namespace=settings.ray_namespace,
            gpus_per_session=settings.gpus_per_session,
            cpus_per_session=(
                RAY_CPUS_PER_SESSION
                if settings.cpus_per_session is None
                else settings.cpus_per_session
            ),
            takeover_grace_seconds=settings.stop_grace_seconds,
            sessions_per_actor=settings.worker_max_sessions,
            # As many warm actors as sessions may run: each holds its CPUs and GPUs.
            max_idle_actors=max(1, settings.max_concurrent_jobs),
            data_cache_bytes=settings.data_cache_bytes,
        )
    )
