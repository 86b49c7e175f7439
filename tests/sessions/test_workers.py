"""Sessions in real worker processes: training, stopping, crashing."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from training_engine.artifacts import WEIGHTS_FILE
from training_sessions.service import SessionService

from tests.fixtures.databases import on_both_databases
from tests.fixtures.waiting import wait_until
from tests.sessions.conftest import FINAL, LONG_RUN, SHORT_RUN, request

pytestmark = pytest.mark.slow


def _worker_pid(training_id: str) -> int:
    for child in multiprocessing.active_children():
        if child.name == f"training-{training_id}" and child.pid is not None:
            return child.pid
    raise AssertionError(f"no worker process for {training_id}")


def _wait_for_progress(service: SessionService, training_id: str, timeout: float = 120.0) -> None:
    """Until the worker has reported at least one batch (the engine is in its loop)."""
    wait_until(lambda: service.get(training_id).progress.total_batches, timeout, "progress")


VERDICTS = (
    "beats both baselines",
    "beats a random guess but not the majority baseline",
    "beats the majority baseline but not a random guess",
    "no better than guessing",
    "worse than guessing",
)


@on_both_databases
def test_sessions_run_to_completed_one_at_a_time_in_order(service: SessionService) -> None:
    first, _ = service.submit(request(SHORT_RUN))
    second, _ = service.submit(request(SHORT_RUN))

    done_first = service.wait_for(first.training_id, FINAL, 180)
    done_second = service.wait_for(second.training_id, FINAL, 180)

    for done in (done_first, done_second):
        assert done.status == "completed", done.error
        assert done.model_path is not None
        assert (Path(done.model_path) / WEIGHTS_FILE).is_file()
        assert done.progress.percent == 100.0
        assert done.progress.epoch == 2
        assert done.finished_at is not None and done.finished_at.tzinfo is not None
    assert done_first.finished_at is not None and done_second.started_at is not None
    assert done_second.started_at >= done_first.finished_at
    performance = service.performance(first.training_id)
    assert [row["epoch"] for row in performance.history] == [1, 2]
    assert {"train_loss", "val_loss", "val_accuracy", "learning_rate"} <= set(
        performance.history[0]
    )
    assert performance.test_metrics is not None and performance.baseline_metrics is not None
    assert "accuracy" in performance.test_metrics
    assert performance.evaluation is not None
    assert performance.evaluation["verdict"]["verdict"] in VERDICTS
    assert service.counts() == {"running": 0, "queued": 0}


def test_stop_running_session_ends_cancelled_with_checkpoint(service: SessionService) -> None:
    view, _ = service.submit(request(LONG_RUN))
    _wait_for_progress(service, view.training_id)

    service.stop(view.training_id)
    stopped = service.wait_for(view.training_id, FINAL, 60)
    again = service.stop(view.training_id)

    assert stopped.status == "cancelled", stopped.error
    assert stopped.error is None
    assert stopped.checkpoint_path is not None and Path(stopped.checkpoint_path).is_file()
    assert stopped.progress.percent < 100.0
    assert again.status == "cancelled"
    assert again.finished_at == stopped.finished_at


def test_stop_queued_behind_running_session_cancels_only_it(service: SessionService) -> None:
    running, _ = service.submit(request(LONG_RUN))
    queued, _ = service.submit(request(SHORT_RUN))
    service.wait_for(running.training_id, {"running"}, 60)

    assert service.stop(queued.training_id).status == "cancelled"
    assert service.get(running.training_id).status == "running"
    assert service.counts() == {"running": 1, "queued": 0}


def test_stop_after_grace_kills_worker_and_notes_it(
    make_service: Callable[..., SessionService],
) -> None:
    service = make_service(stop_grace_seconds=0.5)
    view, _ = service.submit(request(LONG_RUN))
    _wait_for_progress(service, view.training_id)
    # A worker that cannot react (stuck in a C call, say): frozen until killed.
    os.kill(_worker_pid(view.training_id), signal.SIGSTOP)

    service.stop(view.training_id)
    stopped = service.wait_for(view.training_id, FINAL, 60)

    assert stopped.status == "cancelled"
    assert stopped.error is not None and "did not stop within 0.5s" in stopped.error


def test_worker_crash_fails_session_and_service_keeps_working(service: SessionService) -> None:
    doomed, _ = service.submit(request(LONG_RUN))
    _wait_for_progress(service, doomed.training_id)

    os.kill(_worker_pid(doomed.training_id), signal.SIGKILL)
    failed = service.wait_for(doomed.training_id, FINAL, 60)
    after, _ = service.submit(request(SHORT_RUN))
    completed = service.wait_for(after.training_id, FINAL, 180)

    assert failed.status == "failed"
    assert failed.error == "worker exited with code -9"
    assert failed.finished_at is not None
    assert completed.status == "completed", completed.error


def test_a_walk_forward_session_reports_every_fold_in_its_performance(
    service: SessionService,
) -> None:
    strategy = {
        "name": "walk",
        "training_data": {"symbols": ["AAPL"], "timeframes": ["1h"]},
        "indicators": [{"name": "rsi", "period": 14}],
        "model": {"training": {"epochs": 1}},
        "evaluation": {"method": "walk_forward", "folds": 2},
    }
    view, _ = service.submit(request(strategy=strategy))
    done = service.wait_for(view.training_id, FINAL, 180)
    assert done.status == "completed", done.error
    evaluation = service.performance(view.training_id).evaluation
    assert evaluation is not None
    assert [row["fold"] for row in evaluation["folds"]] == [1, 2]
    assert set(evaluation["spread"]) == {"accuracy", "macro_f1"}
    assert evaluation["verdict"]["verdict"] in VERDICTS
