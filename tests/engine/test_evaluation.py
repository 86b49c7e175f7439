"""Test-set metrics and the majority-class baseline."""

from __future__ import annotations

import numpy as np
import pytest
from training_engine.errors import DataError
from training_engine.evaluation import classification_report, majority_baseline_report


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
