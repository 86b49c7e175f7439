"""Test-set metrics, the majority-class baseline, and a model's score on one part."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from training_engine.errors import DataError
from training_engine.evaluation import (
    classification_report,
    majority_baseline_report,
    part_score,
)


def test_report_counts_confusion_and_per_class_precision_recall() -> None:
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0])
    report = classification_report(y_true, y_pred)
    assert report.confusion_matrix == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert report.accuracy == pytest.approx(4 / 6)
    assert report.precision == pytest.approx({"BUY": 0.5, "HOLD": 2 / 3, "SELL": 1.0})
    assert report.recall == pytest.approx({"BUY": 0.5, "HOLD": 1.0, "SELL": 0.5})
    f1 = [0.5, 0.8, 2 / 3]
    assert report.macro_f1 == pytest.approx(sum(f1) / 3)
    assert report.support == 6


def test_majority_baseline_predicts_the_most_frequent_train_class() -> None:
    y_train = np.array([1, 1, 1, 0, 2])
    y_test = np.array([1, 0, 1, 2])
    report = majority_baseline_report(y_train, y_test)
    assert report.accuracy == pytest.approx(0.5)
    assert report.confusion_matrix == [[0, 1, 0], [0, 2, 0], [0, 1, 0]]
    assert report.recall["HOLD"] == 1.0 and report.precision["BUY"] == 0.0


def test_mismatched_lengths_are_a_data_error() -> None:
    with pytest.raises(DataError, match="3 samples but y_pred has 2"):
        classification_report(np.array([0, 1, 2]), np.array([0, 1]))


def test_class_outside_range_is_a_data_error() -> None:
    with pytest.raises(DataError, match=r"outside 0\.\.2"):
        classification_report(np.array([0, 3]), np.array([0, 1]))


def test_part_score_of_logits_is_cross_entropy_and_accuracy() -> None:
    rng = np.random.default_rng(5)
    logits = (rng.normal(size=(50, 4)) * 30).astype(np.float32)  # large: a naive exp overflows
    classes = rng.integers(0, 4, size=50)
    score = part_score(logits, classes, regression=False)

    expected = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(classes)).item()
    assert score.loss == pytest.approx(expected, rel=1e-5)
    assert score.accuracy == pytest.approx(float((logits.argmax(1) == classes).mean()))


def test_part_score_of_a_regression_target_is_squared_error_and_sign_accuracy() -> None:
    outputs = np.array([[0.5], [-1.0], [2.0], [0.1]], dtype=np.float32)
    truth = np.array([1.0, -2.0, -1.0, 0.1], dtype=np.float32)
    score = part_score(outputs, truth, regression=True)

    assert score.loss == pytest.approx((0.25 + 1.0 + 9.0 + 0.0) / 4)
    assert score.accuracy == pytest.approx(3 / 4)


def test_an_empty_part_scores_zero() -> None:
    empty = part_score(np.zeros((0, 3), dtype=np.float32), np.zeros(0), regression=False)
    assert (empty.loss, empty.accuracy) == (0.0, 0.0)
