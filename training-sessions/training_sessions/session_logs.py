"""A session's log file: written by its worker, read back for ``GET .../logs``."""

from __future__ import annotations

from collections import deque
from pathlib import Path

from training_sessions.requests import session_log_path

# Without ?tail, at most this many of the last lines are returned.
MAX_LOG_LINES = 100_000


def read_log(log_dir: Path | None, training_id: str, tail: int | None = None) -> str:
    """The last ``tail`` lines of the session's log ('' before its worker wrote any)."""
    if log_dir is None:
        return ""
    path = session_log_path(log_dir, training_id)
    if not path.is_file():
        return ""
    with path.open(encoding="utf-8", errors="replace") as log:
        lines = deque(log, maxlen=min(tail or MAX_LOG_LINES, MAX_LOG_LINES))
    return "".join(lines)
