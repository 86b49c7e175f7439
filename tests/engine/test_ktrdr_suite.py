"""A suite of KTRDR-format strategies (tests/engine/ktrdr_strategies/) trains end to end.

Together the files use every indicator of KTRDR's registry, every label source, both
file formats (v1/v2 lists and v3 ids), every loss and both output formats; each trains
one epoch on the generated sample data and reports the metrics of its output format.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from training_engine.dataset import prepare_dataset
from training_engine.indicators import KTRDR_INDICATORS
from training_engine.job import ClassificationReport, RegressionReport
from training_engine.losses import CLASSIFICATION_LOSSES, REGRESSION_LOSSES
from training_engine.strategy import StrategyConfig, load_strategy, with_overrides
from training_engine.strategy.names import LABEL_SOURCES
from training_engine.trainer import fit

SUITE = sorted((Path(__file__).parent / "ktrdr_strategies").glob("*.yaml"))


def _load(path: Path) -> StrategyConfig:
    return with_overrides(load_strategy(path), training={"device": "cpu", "epochs": 1})


def test_the_suite_covers_every_indicator_label_source_loss_and_format() -> None:
    strategies = [_load(path) for path in SUITE]
    assert {i.type for s in strategies for i in s.indicators} == set(KTRDR_INDICATORS)
    assert {s.labels.source for s in strategies} == set(LABEL_SOURCES)
    losses = {s.training.loss or ("huber" if s.output_format == "regression" else "cross_entropy")
              for s in strategies}  # fmt: skip
    assert losses == {*CLASSIFICATION_LOSSES, *REGRESSION_LOSSES}
    assert {s.output_format for s in strategies} == {"classification", "regression"}
    listed = {isinstance(s.raw["indicators"], list) for s in strategies}
    assert listed == {True, False}  # v1/v2 lists and v3 ids


@pytest.mark.parametrize("path", SUITE, ids=[p.stem for p in SUITE])
def test_strategy_trains_on_sample_data(
    path: Path, sample_data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    strategy = _load(path)
    data = prepare_dataset(strategy, sample_data_dir)
    outcome = fit(data, strategy)
    result = outcome.result
    assert result.status == "completed" and result.epochs_completed == 1
    assert np.isfinite(result.history[0].train_loss)
    verdict = result.evaluation["verdict"]
    if strategy.output_format == "regression":
        assert data.is_regression and isinstance(result.test_metrics, RegressionReport)
        assert isinstance(result.baseline_metrics, RegressionReport)
        # One rule for every target: better on both R2 and MAE than the train mean.
        assert verdict["verdict"].endswith("the train-mean baseline")
        assert {(c["baseline"], c["metric"]) for c in verdict["comparisons"]} == {
            ("mean", "r2"),
            ("mean", "mae"),
        }
        assert "class_shares" not in result.evaluation
        assert result.evaluation["loss"]["weights"] is None
    else:
        shares = result.evaluation["class_shares"]["train"]
        assert [name for name in shares if name != "samples"] == list(data.class_names)
        assert len(verdict["comparisons"]) == 4
        n_classes = 4 if "regime" in strategy.labels.source else 3
        assert len(data.class_names) == n_classes
        assert isinstance(result.test_metrics, ClassificationReport)
        assert len(result.test_metrics.confusion_matrix) == n_classes
        if strategy.labels.source == "triple_barrier" and strategy.labels.compute_weights:
            assert data.w_train is not None and len(data.w_train) == len(data.y_train)
