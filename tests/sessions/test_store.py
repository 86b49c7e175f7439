"""The store keeps a running session's progress in its row: one transaction per event."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from training_sessions.service import SessionService
from training_sessions.store import SessionRow, SessionStore, to_view, utcnow

from tests.fixtures.databases import on_both_databases
from tests.sessions.conftest import RESUMABLE_RUN, SHORT_RUN, request


@pytest.fixture
def store(paused_service: SessionService) -> Iterator[SessionStore]:
    store = SessionStore(paused_service.settings.database_url)
    yield store
    store.dispose()


def _batch(store: SessionStore, training_id: str, batch: int, percent: float) -> None:
    store.record_progress(
        training_id,
        {"epoch": 1, "batch": batch, "percent": percent},
        {"train_loss": 1.0 / batch},
        ("progress", {"epoch": 1, "batch": batch}),
    )


@on_both_databases
def test_an_epoch_entry_gets_an_id_above_every_batch_entry_it_replaces(
    paused_service: SessionService, store: SessionStore
) -> None:
    training_id = paused_service.submit(request(SHORT_RUN))[0].training_id
    _batch(store, training_id, 1, 10.0)
    _batch(store, training_id, 2, 20.0)
    last_seen = store.events_after(training_id, 0, 100)[-1].id

    store.record_progress(
        training_id,
        {"epoch": 1, "batch": 2, "percent": 20.0},
        {"val_loss": 0.5},
        ("epoch", {"epoch": 1}),
        {"epoch": 1, "val_loss": 0.5},
    )
    events = store.events_after(training_id, 0, 100)

    # The batches are gone, and a client that saw them still gets the epoch after them.
    assert [event.kind for event in events] == ["status", "epoch"]
    assert events[-1].id > last_seen
    assert store.events_after(training_id, last_seen, 100) == events[-1:]
    assert events[-1].data == {"epoch": 1, "percent": 20.0}


@on_both_databases
def test_percent_never_goes_back_and_metrics_keep_their_latest_values(
    paused_service: SessionService, store: SessionStore
) -> None:
    training_id = paused_service.submit(request(SHORT_RUN))[0].training_id
    _batch(store, training_id, 2, 40.0)
    store.record_progress(
        training_id,
        {"epoch": 1, "batch": 1, "percent": 30.0},  # a resume replays a lost batch
        {"val_loss": 0.7},
        ("progress", {"epoch": 1, "batch": 1}),
    )

    view = paused_service.get(training_id)
    replayed = store.events_after(training_id, 0, 100)[-1]

    assert view.progress.percent == 40.0
    assert view.progress.batch == 1
    assert view.metrics == {"train_loss": 0.5, "val_loss": 0.7}
    assert replayed.data["percent"] == 40.0


@on_both_databases
def test_migration_0005_gives_existing_rows_the_launches_their_columns_imply(
    database_url: str,
) -> None:
    store = SessionStore(database_url)
    store.migrate("0004")  # the schema before attempt, node and node_address
    now = utcnow()
    # id: (status, started_at, resume_count) as a runtime before 0005 left them.
    rows = {
        "never-ran": ("queued", None, 0),
        "ran-once": ("completed", now, 0),
        "resumed-waiting": ("queued", now, 1),
        "resumed-and-failed": ("failed", now, 1),
        "interrupted": ("interrupted", now, 0),
    }
    with store.engine.begin() as connection:
        for training_id, (status, started_at, resume_count) in rows.items():
            connection.execute(
                SessionRow.__table__.insert().values(
                    id=training_id,
                    request={},
                    fingerprint="f",
                    status=status,
                    created_at=now,
                    started_at=started_at,
                    resume_count=resume_count,
                )
            )

    store.migrate()
    stored = {training_id: store.get(training_id) for training_id in rows}
    store.dispose()

    assert {training_id: row.attempt for training_id, row in stored.items() if row} == {
        "never-ran": 0,
        "ran-once": 1,
        "resumed-waiting": 1,
        "resumed-and-failed": 2,
        "interrupted": 1,
    }


@on_both_databases
def test_each_trainings_event_ids_start_at_1_and_number_only_its_own_events(
    paused_service: SessionService, store: SessionStore
) -> None:
    first = paused_service.submit(request(SHORT_RUN))[0].training_id
    _batch(store, first, 1, 10.0)
    second = paused_service.submit(request(RESUMABLE_RUN))[0].training_id
    _batch(store, second, 1, 10.0)
    _batch(store, first, 2, 20.0)

    assert [event.id for event in store.events_after(first, 0, 100)] == [1, 2, 3]
    assert [event.id for event in store.events_after(second, 0, 100)] == [1, 2]
    # Last-Event-ID means the same for every training: after its 1st event.
    assert [event.id for event in store.events_after(second, 1, 100)] == [2]


@on_both_databases
def test_a_final_training_keeps_the_id_after_its_last_event_for_the_end_event(
    paused_service: SessionService, store: SessionStore
) -> None:
    training_id = paused_service.submit(request(SHORT_RUN))[0].training_id
    assert paused_service.get(training_id).end_event_id is None

    stopped = paused_service.stop(training_id)
    events = store.events_after(training_id, 0, 100)

    assert stopped.status == "cancelled"
    assert [(event.id, event.data.get("status")) for event in events] == [
        (1, "queued"),
        (2, "cancelled"),
    ]
    assert stopped.end_event_id == 3
    # An event logged later (a late log line, a resume) takes the next id, never the end's.
    store.append_events(training_id, [("log", {"message": "late"})])
    assert store.events_after(training_id, 3, 100)[0].id == 4


@on_both_databases
def test_migration_0006_numbers_existing_events_per_training_and_keeps_an_end_id(
    database_url: str,
) -> None:
    store = SessionStore(database_url)
    store.migrate("0005")  # events numbered across trainings
    now = utcnow()
    events = SessionRow.metadata.tables["training_events"]
    with store.engine.begin() as connection:
        for training_id, status in (("a", "completed"), ("b", "running")):
            connection.execute(
                SessionRow.__table__.insert().values(
                    id=training_id, request={}, fingerprint="f", status=status, created_at=now
                )
            )
        for training_id in ("a", "b", "a", "b", "b"):
            connection.execute(
                events.insert().values(session_id=training_id, kind="log", data={}, created_at=now)
            )

    store.migrate()
    ids = {
        training_id: [e.id for e in store.events_after(training_id, 0, 9)] for training_id in "ab"
    }
    rows = {training_id: store.get(training_id) for training_id in "ab"}
    store.dispose()

    assert ids == {"a": [1, 2], "b": [1, 2, 3]}
    assert rows["a"] is not None and rows["a"].end_event_seq == 3 and rows["a"].event_seq == 3
    assert rows["b"] is not None and rows["b"].end_event_seq is None and rows["b"].event_seq == 3


@on_both_databases
def test_migration_0007_gives_existing_rows_their_strategy_symbols_and_timeframes(
    database_url: str,
) -> None:
    store = SessionStore(database_url)
    store.migrate("0006")
    now = utcnow()
    job = {"strategy": {"name": "momentum_mlp", "symbols": ["AAPL"], "timeframes": ["1h", "4h"]}}
    with store.engine.begin() as connection:
        for training_id, request, stored_job in (
            ("resolved", {}, job),
            ("before-0002", {"strategy": "trend", "symbols": ["MSFT"]}, None),
        ):
            connection.execute(
                SessionRow.__table__.insert().values(
                    id=training_id,
                    request=request,
                    job=stored_job,
                    fingerprint="f",
                    status="completed",
                    created_at=now,
                )
            )

    store.migrate()
    views = {training_id: store.get(training_id) for training_id in ("resolved", "before-0002")}
    store.dispose()

    summaries = {
        training_id: to_view(row).request_summary() for training_id, row in views.items() if row
    }
    assert summaries == {
        "resolved": {
            "strategy": "momentum_mlp",
            "symbols": ["AAPL"],
            "timeframes": ["1h", "4h"],
            "tags": [],
        },
        "before-0002": {"strategy": "trend", "symbols": ["MSFT"], "timeframes": None, "tags": []},
    }
