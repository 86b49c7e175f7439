"""A diverged run ends failed with an error that says so; a NaN metric never breaks an answer."""

from __future__ import annotations

import json

from training_sessions.contract import TrainingList, TrainingStatus
from training_sessions.service import SessionService
from training_sessions.store import SessionStore

from tests.sessions.conftest import FINAL, request

DIVERGING = {"epochs": 3, "learning_rate": 1e20, "early_stopping": {"enabled": False}}


def test_a_diverging_run_ends_failed_at_once_without_a_model(service: SessionService) -> None:
    view, _ = service.submit(request(DIVERGING))
    done = service.wait_for(view.training_id, FINAL, 300)
    body = TrainingStatus.from_view(done, service.settings).model_dump(mode="json")

    assert done.status == "failed"
    assert done.error is not None
    assert done.error.startswith("NonFiniteLossError: the training loss became nan in epoch 1")
    assert done.model_path is None
    assert done.progress.epoch == 1  # stopped in the first epoch, not after three
    json.dumps(body, allow_nan=False)


def test_nan_metrics_in_a_stored_row_answer_as_null(paused_service: SessionService) -> None:
    view, _ = paused_service.submit(request({"epochs": 2}))
    store = SessionStore(paused_service.settings.database_url)
    try:
        store.update(
            view.training_id,
            metrics={"train_loss": float("nan"), "val_loss": float("inf"), "val_accuracy": 0.5},
        )
    finally:
        store.dispose()

    status = TrainingStatus.from_view(paused_service.get(view.training_id), paused_service.settings)
    views, total = paused_service.list()
    listed = TrainingList(
        items=[TrainingStatus.from_view(v, paused_service.settings) for v in views],
        total=total,
        limit=50,
        offset=0,
    )
    status_json = json.dumps(status.model_dump(mode="json"), allow_nan=False)
    list_json = json.dumps(listed.model_dump(mode="json"), allow_nan=False)

    assert json.loads(status_json)["metrics"] == {
        "train_loss": None,
        "val_loss": None,
        "val_accuracy": 0.5,
    }
    assert json.loads(list_json)["items"][0]["metrics"]["train_loss"] is None
