"""``GET .../trainings/{id}/logs``: the parameter and the answer both services document."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from training_sessions.session_logs import MAX_LOG_LINES

LogTailQuery = Annotated[
    int | None,
    Query(ge=1, le=MAX_LOG_LINES, description="only the last N lines (default: all)"),
]

LOG_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"description": "The log as plain text, one timestamped line per record"}
}
