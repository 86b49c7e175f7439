"""The job resolved at submit survives its JSON column unchanged (its pydantic JSON form)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml
from training_engine.strategy import load_strategy, with_overrides
from training_sessions.requests import build_job, resolve_request
from training_sessions.session_job import SessionJob, load_stored_job
from training_sessions.types import RuntimeSettings, TrainingRequest

from tests.sessions.conftest import RESUMABLE_RUN


def _through_json(job: SessionJob) -> SessionJob:
    return load_stored_job(json.loads(json.dumps(job.model_dump(mode="json"))))


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
    assert rebuilt.model_dump(mode="json") == job.model_dump(mode="json")


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
        load_stored_job({"format": 99})


def test_a_stored_job_loads_without_its_document_being_validated_again(
    runtime_settings: RuntimeSettings,
) -> None:
    job = resolve_request(runtime_settings, TrainingRequest(config=RESUMABLE_RUN))
    stored = job.model_dump(mode="json")
    # A document that no longer parses: only the stored config is read at launch.
    stored["strategy"]["raw"] = {"name": "x", "indicators": "rsi"}

    loaded = load_stored_job(stored)

    assert loaded.strategy.model_dump() == job.strategy.model_dump()
    assert loaded.training == job.training


def test_a_job_stored_in_format_1_is_parsed_once_to_the_same_job(
    runtime_settings: RuntimeSettings,
) -> None:
    job = resolve_request(
        runtime_settings,
        TrainingRequest(symbols=("AAPL",), start_date="2024-01-01", config=RESUMABLE_RUN),
    )
    # What the runtime stored before the resolved config was stored with the document.
    format_1 = {
        "format": 1,
        "strategy": {"name": job.strategy_name, "document": dict(job.document)},
        "training": job.training,
        "symbols": list(job.strategy.symbols),
        "timeframes": list(job.strategy.timeframes),
        "start_date": "2024-01-01",
        "end_date": None,
    }

    assert load_stored_job(json.loads(json.dumps(format_1))) == job
