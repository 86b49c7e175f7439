"""A completed run is processed once: its data prepared once, both model folders written by
``train`` from what it holds, each atomically, and KTRDR's copy never costs us our own."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import training_engine.dataset
from training_engine.artifacts import METADATA_FILE, STRATEGY_FILE, WEIGHTS_FILE
from training_engine.job import TrainingResult
from training_engine.ktrdr_export import SUMMARY_FILE, ktrdr_models_dir, read_summary
from training_engine.model_folders import write_model_folders
from training_engine.strategy import load_strategy
from training_engine.trainer import FitOutcome, fit, train

from tests.engine.artifact_golden import NORMALIZATION
from tests.engine.synthetic import cpu_job, make_dataset, make_strategy

OUR_FILES = sorted([METADATA_FILE, WEIGHTS_FILE, STRATEGY_FILE, SUMMARY_FILE])


@pytest.fixture(scope="module")
def trained() -> FitOutcome:
    data = replace(make_dataset(), normalization=NORMALIZATION)
    return fit(data, make_strategy(epochs=1))


def _write(outcome: FitOutcome, models_dir: Path) -> TrainingResult:
    data = replace(make_dataset(), normalization=NORMALIZATION)
    result = replace(outcome.result)
    write_model_folders(models_dir, make_strategy(epochs=1), outcome.model, data, result)
    return result


def test_a_completed_run_prepares_its_data_once_and_writes_both_folders(
    sample_data_dir: Path,
    strategies_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loads: Counter[tuple[str, str]] = Counter()
    real_load = training_engine.dataset.load_ohlcv_with_report

    def counted_load(data_dir: Path, symbol: str, timeframe: str, *args: Any, **kw: Any) -> Any:
        loads[(symbol, timeframe)] += 1
        return real_load(data_dir, symbol, timeframe, *args, **kw)

    monkeypatch.setattr(training_engine.dataset, "load_ohlcv_with_report", counted_load)
    strategy = load_strategy(strategies_dir / "multi_timeframe_mlp.yaml")
    result = train(cpu_job(strategy, sample_data_dir, tmp_path, epochs=1))

    assert result.status == "completed"
    assert loads == {(s, t): 1 for s in ("AAPL", "MSFT") for t in ("1h", "4h")}
    assert result.model_path == tmp_path / "models" / "multi_timeframe_mlp" / "AAPL-MSFT_1h_v1"
    assert result.ktrdr_model_path == (
        ktrdr_models_dir(tmp_path / "models") / "multi_timeframe_mlp" / "AAPL-MSFT_1h_v1"
    )
    assert result.ktrdr_error is None
    assert set(result.part_scores) == {"train", "validation", "test"}
    assert sorted(p.name for p in result.model_path.iterdir()) == OUR_FILES


def test_both_layouts_take_their_versions_from_one_allocator(
    trained: FitOutcome, tmp_path: Path
) -> None:
    first, second = _write(trained, tmp_path), _write(trained, tmp_path)

    assert (first.model_path, second.model_path) == (
        tmp_path / "synthetic" / "AAPL_1h_v1",
        tmp_path / "synthetic" / "AAPL_1h_v2",
    )
    assert (first.ktrdr_model_path, second.ktrdr_model_path) == (
        ktrdr_models_dir(tmp_path) / "synthetic" / "AAPL_1h_v1",
        ktrdr_models_dir(tmp_path) / "synthetic" / "AAPL_1h_v2",
    )
    # Only finished folders: no staging folder is left beside them.
    versions = ["AAPL_1h_v1", "AAPL_1h_v2"]
    assert sorted(p.name for p in (tmp_path / "synthetic").iterdir()) == versions
    # Each model's id: readable, path-safe, and its own even where the folder names match.
    ids = [
        json.loads((result.model_path / METADATA_FILE).read_text())["model_id"]
        for result in (first, second)
        if result.model_path is not None
    ]
    assert [model_id.rsplit(".", 1)[0] for model_id in ids] == [
        "synthetic.AAPL_1h_v1",
        "synthetic.AAPL_1h_v2",
    ]
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", model_id) for model_id in ids)
    assert all(re.fullmatch(r"[0-9a-f]{8}", model_id.rsplit(".", 1)[1]) for model_id in ids)


def test_a_failed_ktrdr_copy_keeps_our_folder_and_the_result_says_what_failed(
    trained: FitOutcome, tmp_path: Path
) -> None:
    # A file where KTRDR's folder should be: nothing can be written under it.
    ktrdr_models_dir(tmp_path).write_text("not a folder")

    result = _write(trained, tmp_path)
    summary = read_summary(result.model_path)

    assert result.model_path == tmp_path / "synthetic" / "AAPL_1h_v1"
    assert sorted(p.name for p in result.model_path.iterdir()) == OUR_FILES
    assert result.ktrdr_model_path is None
    assert result.ktrdr_error is not None and "ktrdr" in result.ktrdr_error
    assert summary is not None
    assert summary["ktrdr_model_path"] is None
    assert summary["ktrdr_error"] == result.ktrdr_error
    assert summary["training_metrics"]["epochs_trained"] == 1
    assert ktrdr_models_dir(tmp_path).read_text() == "not a folder"


def test_a_failure_writing_our_folder_fails_and_leaves_no_ktrdr_copy(
    trained: FitOutcome, tmp_path: Path
) -> None:
    # A file where our strategy's folder should be.
    (tmp_path / "synthetic").write_text("not a folder")

    with pytest.raises(OSError):
        _write(trained, tmp_path)

    ktrdr_folder = ktrdr_models_dir(tmp_path) / "synthetic"
    assert list(ktrdr_folder.iterdir()) == []  # no version, no latest link
