"""How ``GET /api/trainings/{id}/events`` documents a stream refused past a cap.

The caps themselves are the shared ``training_sessions.http.events.StreamSlots`` (the
runtime builds them from the ``BACKEND_*`` settings, counted in the metrics).
"""

from __future__ import annotations

from typing import Any

# The 429 of a stream past either cap, as the route documents it.
TOO_MANY_STREAMS_RESPONSE: dict[int | str, dict[str, Any]] = {
    429: {
        "description": "As many event streams are open as allowed, for this backend or for "
        "this client; retry after Retry-After seconds",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
    }
}
