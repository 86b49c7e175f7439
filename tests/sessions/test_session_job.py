"""The job resolved at submit survives its JSON column unchanged (SessionJob.to_dict/from_dict)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml
from training_engine.strategy import load_strategy, with_overrides
from training_sessions.requests import build_job, resolve_request
from training_sessions.session_job import SessionJob
from training_sessions.types import RuntimeSettings, TrainingRequest

from tests.sessions.conftest import RESUMABLE_RUN


def _through_json(job: SessionJob) -> SessionJob:
    return SessionJob.from_dict(json.loads(json.dumps(job.to_dict())))


@pytest.mark.parametrize("name", ["momentum_mlp", "multi_timeframe_mlp", "trend_lstm"])
def test_every_shipped_strategy_round_trips_to_an_equal_job(
    runtime_settings: RuntimeSettings, strategies_dir: Path, name: str
) -> None:
    job = resolve_request(runtime_settings, TrainingRequest(strategy=name, config=RESUMABLE_RUN))
    as_resolved_before = with_overrides(
        load_strategy(strategies_dir / f"{name}.yaml"),
        training={**RESUMABLE_RUN, "device": "cpu"},
    )

    rebuilt = _through_json(job)

    assert rebuilt == job
    assert rebuilt.strategy == job.strategy == as_resolved_before
    assert rebuilt.to_dict() == job.to_dict()


def test_overrides_symbols_timeframes_dates_device_and_seed_are_all_kept(
    runtime_settings: RuntimeSettings,
) -> None:
    request = TrainingRequest(
        symbols=("AAPL",),
        timeframes=("1h",),
        start_date="2024-01-01",
        end_date="2024-03-01",
        config={"epochs": 3, "learning_rate": 0.01, "early_stopping": {"patience": 2}},
    )

    rebuilt = _through_json(resolve_request(runtime_settings, request))
    training = rebuilt.strategy.training

    assert (training.epochs, training.learning_rate) == (3, 0.01)
    assert training.early_stopping.patience == 2
    assert (training.device, rebuilt.device) == ("cpu", "cpu")
    assert training.seed == 42
    assert rebuilt.training["seed"] == 42
    assert rebuilt.strategy.symbols == ("AAPL",)
    assert rebuilt.strategy.timeframes == ("1h",)
    assert (rebuilt.start_date, rebuilt.end_date) == ("2024-01-01", "2024-03-01")
    job = build_job(runtime_settings, "t1", rebuilt, resume=False)
    assert (job.start_date, job.end_date, job.resume_from) == ("2024-01-01", "2024-03-01", None)


def test_yaml_dates_in_a_strategy_file_are_stored_as_iso_strings(
    runtime_settings: RuntimeSettings, strategies_dir: Path, tmp_path: Path
) -> None:
    document = yaml.safe_load((strategies_dir / "momentum_mlp.yaml").read_text())
    document["created"] = yaml.safe_load("2024-01-31")  # a datetime.date, not JSON
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "dated.yaml").write_text(yaml.safe_dump(document))
    settings = dataclasses.replace(
        runtime_settings, strategies_dir=folder, default_strategy="dated"
    )

    job = resolve_request(settings, TrainingRequest())
    rebuilt = _through_json(job)

    assert job.document["created"] == "2024-01-31"
    assert rebuilt == job


def test_unknown_stored_format_is_refused() -> None:
    with pytest.raises(ValueError, match="format 99"):
        SessionJob.from_dict({"format": 99})
