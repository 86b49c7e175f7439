"""A regression target's verdict: one rule, as for classes, better on BOTH R2 and MAE.

The rule (docs/evaluation.md): the model beats the train-mean baseline only when the
bootstrap interval of its R2 gain lies above 0 AND that of its MAE change lies below 0.
The verdict in the evaluation is what the CLI prints and ``/performance`` carries.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from training_engine.cli import main
from training_engine.evaluation import mean_baseline_report, regression_report
from training_engine.verdict import compare_regression_with_baseline, verdict_lines


def _targets(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 1.0, n)


def test_a_model_close_to_the_targets_beats_the_mean_baseline() -> None:
    y_train, y_test = _targets(400, 1), _targets(300, 2)
    y_pred = y_test + np.random.default_rng(3).normal(0.0, 0.1, 300)
    verdict = compare_regression_with_baseline(y_train, y_test, y_pred, seed=5)
    assert verdict.verdict == "beats the train-mean baseline"
    assert {(c.baseline, c.metric): c.outcome for c in verdict.comparisons} == {
        ("mean", "r2"): "better",
        ("mean", "mae"): "better",
    }


def test_better_r2_with_worse_mae_does_not_beat_the_baseline() -> None:
    # Right on most samples but far off on a few: squared errors shrink, absolute grow.
    rng = np.random.default_rng(4)
    y_train = rng.normal(0.0, 1.0, 2000)
    y_test = np.concatenate([rng.normal(0.0, 0.05, 1800), rng.choice([-10.0, 10.0], 200)])
    y_pred = np.where(np.abs(y_test) > 5, y_test * 0.8, y_test + rng.choice([-1.5, 1.5], 2000))
    model = regression_report(y_test, y_pred)
    baseline = mean_baseline_report(y_train, y_test)
    assert model.r2 > baseline.r2 and model.mae > baseline.mae  # the case the audit found
    verdict = compare_regression_with_baseline(y_train, y_test, y_pred, seed=5)
    outcomes = {c.metric: c.outcome for c in verdict.comparisons}
    assert outcomes == {"r2": "better", "mae": "worse"}
    assert verdict.verdict == "no better than the train-mean baseline"


def test_a_model_worse_on_both_is_worse_than_the_baseline() -> None:
    y_train, y_test = _targets(400, 1), _targets(300, 2)
    verdict = compare_regression_with_baseline(y_train, y_test, -y_test, seed=5)
    assert verdict.verdict == "worse than the train-mean baseline"


def test_observed_values_are_the_reports_and_the_bootstrap_is_seeded() -> None:
    y_train, y_test = _targets(200, 1), _targets(150, 2)
    y_pred = 0.5 * y_test + np.random.default_rng(6).normal(0.0, 0.5, 150)
    verdict = compare_regression_with_baseline(y_train, y_test, y_pred, seed=9, resamples=200)
    by = {c.metric: c for c in verdict.comparisons}
    model, baseline = regression_report(y_test, y_pred), mean_baseline_report(y_train, y_test)
    assert by["r2"].model == pytest.approx(model.r2)
    assert by["r2"].baseline_value == pytest.approx(baseline.r2)
    assert by["mae"].model == pytest.approx(model.mae)
    assert by["mae"].baseline_value == pytest.approx(baseline.mae)
    for item in verdict.comparisons:
        assert item.ci_low <= item.difference <= item.ci_high
    again = compare_regression_with_baseline(y_train, y_test, y_pred, seed=9, resamples=200)
    assert again.to_dict() == verdict.to_dict()
    text = "\n".join(verdict_lines(verdict.to_dict()))
    assert "r2        vs mean" in text and "mae       vs mean" in text


def test_the_cli_prints_the_verdict_of_the_one_rule(
    sample_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strategy = {
        "name": "returns",
        "training_data": {"symbols": ["AAPL"], "timeframes": ["1h"]},
        "indicators": [{"name": "rsi", "period": 14}, {"name": "roc", "period": 10}],
        "training": {"labels": {"source": "forward_return", "horizon": 12}},
        "model": {"training": {"epochs": 1, "device": "cpu", "batch_size": 256}},
    }
    path = tmp_path / "returns.yaml"
    path.write_text(yaml.safe_dump(strategy))
    args = ["--data-dir", str(sample_data_dir), "--models-dir", str(tmp_path / "m"), "--quiet"]
    assert main(["train", str(path), *args]) == 0
    out = capsys.readouterr().out
    model_dir = Path(out.split("model: ")[-1].splitlines()[0].strip())
    saved = yaml.safe_load((model_dir / "metadata.json").read_text())
    sentence = saved["evaluation"]["verdict"]["verdict"]
    assert sentence.endswith("the train-mean baseline")
    assert f"verdict: {sentence}" in out
    assert "the model beats the baseline" not in out  # the old R2-only judgement is gone
