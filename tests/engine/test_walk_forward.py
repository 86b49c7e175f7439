"""Walk-forward evaluation: expanding folds with gaps, one model per fold, one verdict."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from training_engine.artifacts import load_trained_model
from training_engine.cli import main
from training_engine.dataset import prepare_dataset, prepare_walk_forward
from training_engine.errors import StrategyConfigError
from training_engine.job import TrainingJob
from training_engine.strategy import StrategyConfig, parse_strategy
from training_engine.trainer import train

HOUR = pd.Timedelta(hours=1)
LOOKBACK, LOOKAHEAD = 4, 9


def _strategy(
    folds: int = 3, method: str = "walk_forward", model_scale: bool = True, **extra: object
) -> StrategyConfig:
    return parse_strategy(
        {
            "name": "walk",
            "training_data": {"symbols": ["AAPL", "MSFT"], "timeframes": ["1h"]},
            "indicators": [{"name": "rsi", "period": 14}, {"name": "roc", "period": 10}],
            "model": {
                "features": {"lookback_periods": LOOKBACK, "scale_features": model_scale},
                "training": {"epochs": 2, "device": "cpu", "batch_size": 64},
            },
            "training": {"labels": {"zigzag_threshold": 0.01, "label_lookahead": LOOKAHEAD}},
            "evaluation": {"method": method, "folds": folds},
            **extra,
        }
    )


def _range(data: object, part: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    ranges = [r for r in data.splits if r.part == part and r.samples]  # type: ignore[attr-defined]
    return min(r.first_bar for r in ranges), max(r.last_bar for r in ranges)


def _labels_end(data: object, part: str) -> pd.Timestamp:
    """The last bar the part's labels read (its own prices only)."""
    ranges = [r for r in data.splits if r.part == part and r.samples]  # type: ignore[attr-defined]
    return max(r.labels_end for r in ranges)


def test_folds_expand_and_their_test_blocks_follow_each_other(sample_data_dir: Path) -> None:
    folds = list(prepare_walk_forward(_strategy(folds=3), sample_data_dir))
    assert len(folds) == 3
    trains = [len(fold.y_train) for fold in folds]
    assert trains == sorted(trains) and trains[0] < trains[-1]
    tests = [_range(fold, "test") for fold in folds]
    for (_, end), (start, _) in itertools.pairwise(tests):
        assert end < start  # test blocks do not overlap
    for fold in folds:
        train_end = _range(fold, "train")[1]
        val_start, val_end = _range(fold, "validation")
        test_start = _range(fold, "test")[0]
        # the gap, in time, between every two parts of every fold
        assert train_end <= _labels_end(fold, "train") < val_start - (LOOKBACK - 1) * HOUR
        assert val_end <= _labels_end(fold, "validation") < test_start - (LOOKBACK - 1) * HOUR
    # The last fold ends with the data, as a single split's test part does.
    single = prepare_dataset(_strategy(method="single_split"), sample_data_dir)
    assert tests[-1][1] == _range(single, "test")[1]


def test_each_fold_normalises_the_raw_rows_with_its_own_statistics(
    sample_data_dir: Path,
) -> None:
    # The folds share the symbols' raw rows: normalising one fold must not change the next.
    raw = list(prepare_walk_forward(_strategy(model_scale=False), sample_data_dir))
    scaled = list(prepare_walk_forward(_strategy(), sample_data_dir))
    for plain, fold in zip(raw, scaled, strict=True):
        assert plain.normalization is None and fold.normalization is not None
        assert np.allclose(fold.rows, fold.normalization.apply(plain.rows), atol=1e-5)
    assert not np.allclose(scaled[0].normalization.mean, scaled[-1].normalization.mean)


def test_walk_forward_trains_one_model_per_fold_and_judges_them_together(
    sample_data_dir: Path, tmp_path: Path
) -> None:
    strategy = _strategy(folds=3)
    job = TrainingJob(
        strategy=strategy,
        data_dir=sample_data_dir,
        models_dir=tmp_path / "models",
        checkpoint_path=tmp_path / "ck.pt",
    )
    result = train(job)
    assert result.status == "completed" and result.model_path is not None
    evaluation = result.evaluation
    assert evaluation["method"] == "walk_forward"
    assert [row["fold"] for row in evaluation["folds"]] == [1, 2, 3]
    accuracies = [row["accuracy"] for row in evaluation["folds"]]
    assert evaluation["spread"]["accuracy"]["min"] == min(accuracies)
    assert evaluation["spread"]["accuracy"]["mean"] == pytest.approx(sum(accuracies) / 3)
    verdict = evaluation["verdict"]
    assert verdict["pooled_folds"] == 3
    folds = list(prepare_walk_forward(strategy, sample_data_dir))
    assert verdict["test_samples"] == sum(len(f.y_test) for f in folds)
    # The saved model is the last fold's; its metadata carries every fold.
    assert result.test_metrics is not None
    assert result.test_metrics.accuracy == accuracies[-1]
    assert (
        load_trained_model(result.model_path).metadata["evaluation"]["folds"] == evaluation["folds"]
    )
    assert not (tmp_path / "ck.pt").exists()


def test_the_cli_prints_each_fold_and_the_spread(
    sample_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "walk.yaml"
    document = {
        "name": "walk",
        "training_data": {"symbols": ["AAPL"], "timeframes": ["1h"]},
        "indicators": [{"name": "rsi", "period": 14}],
        "model": {"training": {"epochs": 1, "device": "cpu"}},
        "evaluation": {"method": "walk_forward", "folds": 2},
    }
    path.write_text(yaml.safe_dump(document))
    code = main(
        ["train", str(path), "--data-dir", str(sample_data_dir), "--models-dir", str(tmp_path)]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "walk-forward: 2 folds" in out and "fold 1: test" in out and "fold 2: test" in out
    assert "accuracy: mean" in out and "verdict: " in out


def test_walk_forward_needs_two_folds() -> None:
    with pytest.raises(StrategyConfigError, match=r"evaluation\.folds"):
        _strategy(folds=1)
    assert _strategy(folds=1, method="single_split").evaluation.method == "single_split"


def test_walk_forward_refuses_a_regression_target(sample_data_dir: Path, tmp_path: Path) -> None:
    labels = {"labels": {"source": "forward_return", "horizon": 5}}
    strategy = _strategy(folds=2, training=labels)
    job = TrainingJob(strategy, sample_data_dir, tmp_path / "models", tmp_path / "run.ckpt")
    with pytest.raises(StrategyConfigError, match=r"evaluation\.method"):
        train(job)
