"""The routing table on SQLite and on a real PostgreSQL server: it survives a restart."""

from __future__ import annotations

from backend_proxy.routing_table import RoutingTable

from tests.fixtures.databases import on_both_databases

pytestmark = on_both_databases


def test_routes_survive_a_restart_with_last_state_and_pending_stop(database_url: str) -> None:
    table = RoutingTable(database_url)
    table.add(
        "t-host",
        "host_service",
        fallback_reason=None,
        confirmed=False,
        last_state={"training_id": "t-host", "status": "unknown"},
    )
    table.update(
        "t-host",
        confirmed=True,
        last_state={"training_id": "t-host", "status": "running", "progress": {"percent": 40.0}},
    )
    table.update("t-host", stop_pending=True)
    table.add(
        "t-local",
        "local",
        fallback_reason="breaker_open",
        confirmed=True,
        last_state={"training_id": "t-local", "status": "queued"},
    )
    table.close()

    reopened = RoutingTable(database_url)
    host = reopened.get("t-host")
    local = reopened.get("t-local")
    pending = reopened.pending_stops()
    reopened.close()

    assert host is not None and local is not None
    assert host.routed_to == "host_service"
    assert host.confirmed is True
    assert host.last_state["progress"] == {"percent": 40.0}
    assert host.created_at.tzinfo is not None
    assert local.routed_to == "local"
    assert local.fallback_reason == "breaker_open"
    assert [route.training_id for route in pending] == ["t-host"]


def test_list_is_newest_first_filtered_by_last_status_and_paginated(database_url: str) -> None:
    table = RoutingTable(database_url)
    for i, status in enumerate(["completed", "running", "completed", "running"]):
        table.add(
            f"t{i}",
            "local",
            fallback_reason="disabled",
            confirmed=True,
            last_state={"training_id": f"t{i}", "status": status},
        )

    running, running_total = table.list_routes(status="running")
    page, total = table.list_routes(limit=2, offset=1)
    table.delete("t0")
    _, after_delete = table.list_routes()
    table.close()

    assert [route.training_id for route in running] == ["t3", "t1"]
    assert running_total == 2
    assert [route.training_id for route in page] == ["t2", "t1"]
    assert total == 4
    assert after_delete == 3
