"""Walk-forward evaluation: K models trained in turn on expanding windows, judged together.

Each fold is a complete single-split run (``fit``) on the data ``prepare_walk_forward``
yields; its test metrics are kept per fold, their spread is reported, and the verdict is
drawn from all folds' test predictions together (``verdict``: folds pooled with their test
sizes as weights). The model saved is the last fold's (trained on the most data); its test
metrics are the result's ``test_metrics``.

Folds write no checkpoint: a stopped walk-forward run starts again from its first fold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from training_engine.dataset import PreparedDataset
from training_engine.job import RegressionReport, TrainingResult
from training_engine.verdict import FoldPredictions, compare_with_baselines

FitFold = Callable[[PreparedDataset], tuple[TrainingResult, Any, np.ndarray | None]]


def run_walk_forward(
    folds: Iterable[PreparedDataset], fit_fold: FitFold, *, seed: int
) -> tuple[TrainingResult, Any, PreparedDataset | None]:
    """Train every fold with ``fit_fold``; the last fold's result, model and data.

    ``fit_fold`` returns (result, model, test predictions). The result carries
    ``evaluation["folds"]``, ``["spread"]`` and the pooled ``["verdict"]``; a cancelled fold
    ends the run and its result is returned as is (model and data None).
    """
    rows: list[dict[str, Any]] = []
    pooled: list[FoldPredictions] = []
    last: tuple[TrainingResult, Any, PreparedDataset] | None = None
    for number, data in enumerate(folds, start=1):
        result, model, predictions = fit_fold(data)
        if result.status != "completed" or predictions is None:
            result.checkpoint_path = None  # nothing to resume: folds are not checkpointed
            return result, None, None
        pooled.append(FoldPredictions(data.y_train, data.y_test, predictions))
        rows.append(_fold_row(number, result))
        last = (result, model, data)
    if last is None:
        raise ValueError("walk-forward needs at least one fold")
    result, model, data = last
    verdict = compare_with_baselines(pooled, n_classes=len(data.class_names), seed=seed)
    result.evaluation.update(
        method="walk_forward",
        folds=rows,
        spread=fold_spread(rows),
        verdict={**verdict.to_dict(), "pooled_folds": len(rows)},
    )
    return result, model, data


def _fold_row(number: int, result: TrainingResult) -> dict[str, Any]:
    """One fold: its test metrics, its own verdict, and its parts' date ranges."""
    metrics, baseline = result.test_metrics, result.baseline_metrics
    if isinstance(metrics, RegressionReport) or isinstance(baseline, RegressionReport):
        raise TypeError("walk-forward folds are judged on classes, not a regression target")
    evaluation = result.evaluation
    return {
        "fold": number,
        "accuracy": metrics.accuracy if metrics else None,
        "macro_f1": metrics.macro_f1 if metrics else None,
        "majority_accuracy": baseline.accuracy if baseline else None,
        "verdict": evaluation.get("verdict", {}).get("verdict"),
        "epochs": result.epochs_completed,
        "splits": evaluation.get("splits", {}).get("parts", []),
    }


def fold_spread(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean, standard deviation, min and max of each fold metric."""
    spread = {}
    for metric in ("accuracy", "macro_f1"):
        values = np.array([row[metric] for row in rows], dtype=np.float64)
        spread[metric] = {
            "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "min": float(values.min()),
            "max": float(values.max()),
        }
    return spread


def fold_lines(evaluation: Mapping[str, Any]) -> list[str]:
    """Human-readable: one line per fold, then the spread."""
    lines = [f"walk-forward: {len(evaluation['folds'])} folds (expanding window)"]
    for row in evaluation["folds"]:
        tests = [part for part in row["splits"] if part["part"] == "test" and part["samples"]]
        span = (
            f"{min(p['first_bar'] for p in tests)[:10]} .. {max(p['last_bar'] for p in tests)[:10]}"
            if tests
            else "?"
        )
        lines.append(
            f"  fold {row['fold']}: test {span}  accuracy {row['accuracy']:.3f}  "
            f"macro-F1 {row['macro_f1']:.3f}  ({row['verdict']})"
        )
    for metric, values in evaluation["spread"].items():
        lines.append(
            f"  {metric}: mean {values['mean']:.3f}, std {values['std']:.3f}, "
            f"min {values['min']:.3f}, max {values['max']:.3f}"
        )
    return lines
