"""What multiprocessing's fork server loads before it forks the local runner's workers.

Imported only in the fork server (``FORK_SERVER_PRELOAD`` in
:mod:`training_sessions.runners.local`), never by the service:

- torch, pandas and the engine, once, so that a forked worker starts with them loaded;
  none of them starts CUDA or a thread pool when imported;
- SIGTERM ignored. A worker's exit status reaches the service only through the fork
  server, so the fork server must outlive the workers: a SIGTERM sent to the whole group
  (``kill -TERM -<pgid>``, a unit with ``KillMode=control-group``) reaches the service,
  which stops its sessions, and the workers, which checkpoint; the fork server exits by
  itself once the service has (it reads the end of the service's pipe). A worker sets
  its own SIGTERM handler first thing (:func:`training_sessions.warm_worker.serve_sessions`).
"""

from __future__ import annotations

import signal

import training_engine.trainer  # noqa: F401

import training_sessions.warm_worker  # noqa: F401

signal.signal(signal.SIGTERM, signal.SIG_IGN)
