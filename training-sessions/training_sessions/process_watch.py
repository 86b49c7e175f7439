"""Whether the service that started a worker process still runs.

A worker started with ``spawn`` is the service's child: the service is gone when the
worker's parent changes (it is adopted). A worker forked by multiprocessing's fork server
is the fork server's child instead, so it watches the service itself, by pid and start
time (``/proc``, Linux, where the fork server is used): a pid the system reused later is
another process, and a dead service not yet reaped (a zombie) counts as gone.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

# /proc/<pid>/stat after the command's closing parenthesis: state is the first field,
# the start time (clock ticks since boot) the twentieth.
_STATE_FIELD = 0
_START_TIME_FIELD = 19
_GONE_STATES = frozenset({"Z", "X", "x"})


def service_watch(service_pid: int) -> Callable[[], bool]:
    """A check, cheap enough to run between batches, that is True while the service runs."""
    if os.getppid() == service_pid:
        return lambda: os.getppid() == service_pid
    if not Path("/proc/self/stat").exists():
        return lambda: _exists(service_pid)  # no start time to tell a reused pid by
    started = process_start_time(service_pid)
    if started is None:
        return lambda: False  # gone already, or not a system that shows it
    return lambda: process_start_time(service_pid) == started


def process_start_time(pid: int) -> str | None:
    """The process's start time as the system counts it; None when it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) <= _START_TIME_FIELD or fields[_STATE_FIELD] in _GONE_STATES:
        return None
    return fields[_START_TIME_FIELD]


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True
