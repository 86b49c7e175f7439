"""Model directories: versioned, complete, and loaded back to predict like the trained model."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from training_engine.artifacts import (
    METADATA_FILE,
    STRATEGY_FILE,
    WEIGHTS_FILE,
    load_trained_model,
    read_model_evaluation,
    save_model_artifact,
)
from training_engine.errors import ArtifactError
from training_engine.job import TrainingResult
from training_engine.models import batched_logits
from training_engine.strategy import load_strategy
from training_engine.trainer import FitOutcome, fit, train
from training_engine.windows import gather_windows

from tests.engine.artifact_golden import (
    GOLDEN_ARTIFACT,
    NORMALIZATION,
    VOLATILE_METADATA,
    fixed_run,
)
from tests.engine.synthetic import cpu_job, make_dataset, make_strategy

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def trained() -> FitOutcome:
    data = replace(make_dataset(), normalization=NORMALIZATION)
    return fit(data, make_strategy(epochs=2))


def _save(outcome: FitOutcome, models_dir: Path) -> Path:
    data = replace(make_dataset(), normalization=NORMALIZATION)
    return save_model_artifact(
        models_dir, make_strategy(epochs=2), outcome.model, data, outcome.result
    )


def test_artifact_files_are_those_written_before_save_model_artifact_took_data_and_result(
    tmp_path: Path,
) -> None:
    strategy, model, data, result = fixed_run()
    path = save_model_artifact(tmp_path, strategy, model, data, result)

    assert path == tmp_path / "synthetic" / "AAPL_1h_v1"
    for name in (WEIGHTS_FILE, STRATEGY_FILE):
        assert (path / name).read_bytes() == (GOLDEN_ARTIFACT / name).read_bytes(), name

    # metadata.json as text, so that 3 and 3.0 differ; less its lines that change every run
    volatile = tuple(f'"{key}":' for key in VOLATILE_METADATA)

    def stable_lines(directory: Path) -> list[str]:
        lines = (directory / METADATA_FILE).read_text(encoding="utf-8").splitlines()
        return [line for line in lines if not line.lstrip().startswith(volatile)]

    metadata = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
    assert set(VOLATILE_METADATA) <= metadata.keys()
    assert stable_lines(path) == stable_lines(GOLDEN_ARTIFACT)


def test_loaded_model_predicts_from_raw_windows_like_the_in_memory_model(
    trained: FitOutcome, tmp_path: Path
) -> None:
    path = _save(trained, tmp_path)
    loaded = load_trained_model(path)
    x_normalised = gather_windows(make_dataset(), "test")
    x_raw = x_normalised * NORMALIZATION.std + NORMALIZATION.mean
    expected = torch.softmax(batched_logits(trained.model, torch.from_numpy(x_normalised)), 1)

    probabilities = loaded.predict_proba(x_raw)
    assert probabilities.shape == (len(x_raw), 3)
    np.testing.assert_allclose(probabilities, expected.numpy(), atol=1e-5)
    assert np.array_equal(loaded.predict(x_raw), expected.argmax(1).numpy())
    assert not loaded.model.training
    assert loaded.strategy == make_strategy(epochs=2)
    assert loaded.feature_names == ["f0", "f1", "f2", "f3"]


def test_artifact_directory_is_versioned_and_complete(trained: FitOutcome, tmp_path: Path) -> None:
    first, second = _save(trained, tmp_path), _save(trained, tmp_path)
    assert first == tmp_path / "synthetic" / "AAPL_1h_v1"
    assert second == tmp_path / "synthetic" / "AAPL_1h_v2"
    # Only the two finished versions: no staging directory is left behind.
    assert sorted(p.name for p in (tmp_path / "synthetic").iterdir()) == [
        "AAPL_1h_v1",
        "AAPL_1h_v2",
    ]
    assert sorted(p.name for p in first.iterdir()) == [METADATA_FILE, WEIGHTS_FILE, STRATEGY_FILE]
    metadata = json.loads((first / METADATA_FILE).read_text())
    assert metadata["class_names"] == ["BUY", "HOLD", "SELL"]
    assert metadata["lookback"] == 3 and metadata["n_features"] == 4
    assert len(metadata["history"]) == 2
    assert metadata["test_metrics"]["support"] == 200
    assert metadata["normalization"]["mean"] == pytest.approx([100.0, -2.0, 0.5, 7.0])


def test_incomplete_model_directory_names_the_missing_file(
    trained: FitOutcome, tmp_path: Path
) -> None:
    path = _save(trained, tmp_path)
    (path / WEIGHTS_FILE).unlink()
    with pytest.raises(ArtifactError, match=r"missing model\.safetensors"):
        load_trained_model(path)


def test_missing_model_directory_is_an_artifact_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not found"):
        load_trained_model(tmp_path / "nothing_v1")


def test_windows_of_the_wrong_shape_are_refused(trained: FitOutcome, tmp_path: Path) -> None:
    loaded = load_trained_model(_save(trained, tmp_path))
    with pytest.raises(ArtifactError, match=r"\[n, 3, 4\]"):
        loaded.predict(np.zeros((2, 5, 4), dtype=np.float32))


def test_training_on_generated_data_beats_the_majority_baseline(
    sample_data_dir: Path, strategies_dir: Path, tmp_path: Path
) -> None:
    strategy = load_strategy(strategies_dir / "momentum_mlp.yaml")
    result = train(cpu_job(strategy, sample_data_dir, tmp_path, epochs=4))

    assert result.status == "completed" and result.model_path is not None
    assert result.model_path == tmp_path / "models" / "momentum_mlp" / "AAPL_1h_v1"
    assert result.test_metrics is not None and result.baseline_metrics is not None
    assert result.test_metrics.accuracy > result.baseline_metrics.accuracy
    assert result.test_metrics.macro_f1 > result.baseline_metrics.macro_f1
    assert result.evaluation["verdict"]["verdict"] == "beats both baselines"
    loaded = load_trained_model(result.model_path)
    assert loaded.metadata["evaluation"] == result.evaluation
    assert read_model_evaluation(result.model_path) == result.evaluation
    assert loaded.feature_names == result.feature_names
    assert loaded.strategy.training.epochs == 4


def test_multi_symbol_model_directory_joins_symbols_with_dashes(
    trained: FitOutcome, tmp_path: Path
) -> None:
    data = replace(
        make_dataset(), normalization=None, symbols=("AAPL", "MSFT"), base_timeframe="4h"
    )
    untested = TrainingResult(status="completed", device="cpu", epochs_completed=0, total_epochs=2)
    path = save_model_artifact(tmp_path, make_strategy(epochs=2), trained.model, data, untested)
    assert path == tmp_path / "synthetic" / "AAPL-MSFT_4h_v1"
    loaded = load_trained_model(path)
    assert loaded.normalization is None
    assert loaded.predict(gather_windows(data, "test")[:5]).shape == (5,)
