"""The cluster behind the host (executor ``ray``): its nodes and the sessions on each.

Shown by ``/health/detailed``, ``/gpu/status`` and ``/metrics``; None with the local
executor. The nodes come from the runner (Ray's view now), the sessions from the store
(where each running session's last launch was placed).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from training_sessions.errors import LaunchError
from training_sessions.runners import ClusterRunner, SessionRunner
from training_sessions.service import SessionService

# More running sessions than any cluster this host drives.
MAX_RUNNING_LISTED = 1000


def cluster_view(runner: SessionRunner | None, manager: SessionService) -> dict[str, Any] | None:
    """``{"reachable", "nodes": [{node, node_address, alive, cpus, gpus, memory_bytes,
    sessions}], "unplaced_sessions"}``, or ``{"reachable": false, "error"}``."""
    if not isinstance(runner, ClusterRunner):
        return None
    try:
        nodes = runner.nodes()
    except LaunchError as exc:
        return {"reachable": False, "error": str(exc), "nodes": []}
    running, _ = manager.list(status="running", limit=MAX_RUNNING_LISTED)
    by_node: dict[str, list[str]] = {}
    for view in running:
        by_node.setdefault(view.node or "", []).append(view.training_id)
    known = {node.node for node in nodes}
    return {
        "reachable": True,
        "nodes": [{**asdict(node), "sessions": by_node.get(node.node, [])} for node in nodes],
        # Submitted, not placed by Ray yet (no room), or placed on a node Ray forgot.
        "unplaced_sessions": [
            training_id for node, ids in by_node.items() if node not in known for training_id in ids
        ],
    }
