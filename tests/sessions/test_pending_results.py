"""A result the database refused is kept beside the checkpoint in one JSON form."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from training_sessions import pending_results
from training_sessions.pending_results import FinalColumns, PendingResult, pending_result_file
from training_sessions.types import SessionStatus

EPOCH = {
    "epoch": 1,
    "train_loss": 0.5,
    "val_loss": 0.6,
    "val_accuracy": 0.5,
    "learning_rate": 0.001,
    "epoch_seconds": 1.0,
    "samples_per_second": 10.0,
}


def test_a_kept_result_reads_back_equal_with_only_the_columns_it_set(tmp_path: Path) -> None:
    finished = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    result = PendingResult(
        training_id="t1",
        status=SessionStatus.CANCELLED,
        values=FinalColumns(finished_at=finished, error=None, checkpoint_path="/c/t1.ckpt"),
        epochs=[EPOCH],
        events=[("log", {"message": "bye"})],
    )
    path = pending_result_file(tmp_path, "t1")

    pending_results.keep(path, result)
    kept = pending_results.load(path)

    assert kept == result
    assert kept is not None
    assert kept.columns() == {
        "finished_at": finished,
        "error": None,
        "checkpoint_path": "/c/t1.ckpt",
    }


def test_a_result_kept_by_the_earlier_hand_written_form_still_loads(tmp_path: Path) -> None:
    path = pending_result_file(tmp_path, "t1")
    path.write_text(
        json.dumps(
            {
                "training_id": "t1",
                "status": "completed",
                "values": {
                    "finished_at": "2026-01-02T03:04:05+00:00",
                    "model_path": "/m/v1",
                    "percent": 100.0,
                },
                "datetime_keys": ["finished_at"],
                "epochs": [EPOCH],
                "events": [["result", {"status": "completed"}]],
            }
        )
    )

    kept = pending_results.load(path)

    assert kept is not None
    assert kept.status == SessionStatus.COMPLETED
    assert kept.columns() == {
        "finished_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "model_path": "/m/v1",
        "percent": 100.0,
    }
    assert kept.epochs == [EPOCH]
    assert kept.events == [("result", {"status": "completed"})]


def test_no_kept_file_is_no_result(tmp_path: Path) -> None:
    assert pending_results.load(pending_result_file(tmp_path, "t1")) is None
