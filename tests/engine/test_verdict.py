"""The verdict against the majority baseline and a random guess, with bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pytest
from training_engine.evaluation import classification_report, majority_baseline_report
from training_engine.verdict import (
    FoldPredictions,
    class_shares,
    compare_with_baselines,
    verdict_lines,
)


def _labels(n: int, shares: tuple[float, float, float], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).choice(3, size=n, p=shares).astype(np.int64)


def _by_key(verdict_dict: dict[str, object]) -> dict[tuple[str, str], dict[str, float]]:
    return {(c["baseline"], c["metric"]): c for c in verdict_dict["comparisons"]}  # type: ignore[index,union-attr,misc]


def test_a_model_that_knows_the_labels_beats_both_baselines() -> None:
    y_train = _labels(2000, (0.3, 0.4, 0.3), 1)
    y_test = _labels(600, (0.3, 0.4, 0.3), 2)
    y_pred = np.where(np.random.default_rng(3).random(600) < 0.8, y_test, (y_test + 1) % 3)
    verdict = compare_with_baselines([FoldPredictions(y_train, y_test, y_pred)], seed=5)
    assert verdict.verdict == "beats both baselines"
    assert all(c.outcome == "better" for c in verdict.comparisons)


def test_a_model_predicting_hold_almost_always_is_no_better_than_guessing() -> None:
    # HOLD is the majority: accuracy near the majority's, macro-F1 barely above it.
    y_train = _labels(3000, (0.25, 0.5, 0.25), 1)
    y_test = _labels(800, (0.25, 0.5, 0.25), 2)
    y_pred = np.ones(800, dtype=np.int64)
    y_pred[:8] = _labels(8, (0.5, 0.0, 0.5), 4)  # 1% of guesses off HOLD, at random
    verdict = compare_with_baselines([FoldPredictions(y_train, y_test, y_pred)], seed=5)
    outcomes = {(c.baseline, c.metric): c.outcome for c in verdict.comparisons}
    assert outcomes[("majority", "accuracy")] == "tied"
    # Its macro-F1 is below a random guess's: it has learnt nothing but the class rates.
    assert outcomes[("random", "macro_f1")] == "worse"
    assert verdict.verdict == "no better than guessing"


def test_a_model_guessing_at_random_is_no_better_than_guessing() -> None:
    y_train = _labels(3000, (0.3, 0.4, 0.3), 1)
    y_test = _labels(800, (0.3, 0.4, 0.3), 2)
    y_pred = _labels(800, (0.3, 0.4, 0.3), 9)
    verdict = compare_with_baselines([FoldPredictions(y_train, y_test, y_pred)], seed=5)
    assert verdict.verdict == "no better than guessing"


def test_a_model_that_predicts_the_wrong_class_is_worse_than_guessing() -> None:
    y_train = _labels(2000, (0.3, 0.4, 0.3), 1)
    y_test = _labels(600, (0.3, 0.4, 0.3), 2)
    verdict = compare_with_baselines([FoldPredictions(y_train, y_test, (y_test + 1) % 3)], seed=5)
    assert verdict.verdict == "worse than guessing"


def test_observed_values_match_the_reports_and_the_expected_random_guess() -> None:
    y_train = np.array([1, 1, 1, 0, 2, 1, 0, 2])
    y_test = np.array([1, 0, 1, 2, 2, 0, 1, 1])
    y_pred = np.array([1, 0, 2, 2, 1, 0, 1, 0])
    verdict = compare_with_baselines([FoldPredictions(y_train, y_test, y_pred)], resamples=50)
    by = {(c.baseline, c.metric): c for c in verdict.comparisons}
    model = classification_report(y_test, y_pred)
    majority = majority_baseline_report(y_train, y_test)
    assert by[("majority", "accuracy")].model == pytest.approx(model.accuracy)
    assert by[("majority", "macro_f1")].model == pytest.approx(model.macro_f1)
    assert by[("majority", "accuracy")].baseline_value == pytest.approx(majority.accuracy)
    assert by[("majority", "macro_f1")].baseline_value == pytest.approx(majority.macro_f1)
    p = np.array([2, 4, 2]) / 8  # train rates
    q = np.array([2, 4, 2]) / 8  # test shares
    assert by[("random", "accuracy")].baseline_value == pytest.approx(float(p @ q))
    expected_f1 = np.mean(2 * p * q / (p + q))
    assert by[("random", "macro_f1")].baseline_value == pytest.approx(expected_f1)


def test_the_bootstrap_is_seeded_and_the_interval_holds_the_observed_difference() -> None:
    y_train = _labels(500, (0.3, 0.4, 0.3), 1)
    y_test = _labels(300, (0.3, 0.4, 0.3), 2)
    y_pred = np.where(np.random.default_rng(3).random(300) < 0.5, y_test, 1)
    fold = FoldPredictions(y_train, y_test, y_pred)
    first = compare_with_baselines([fold], seed=11).to_dict()
    assert compare_with_baselines([fold], seed=11).to_dict() == first
    assert compare_with_baselines([fold], seed=12).to_dict() != first
    for item in first["comparisons"]:
        assert item["ci_low"] <= item["difference"] <= item["ci_high"]
    text = "\n".join(verdict_lines(first))
    assert "verdict: " in text and "macro_f1" in text and "random" in text


def test_folds_are_pooled_with_their_test_sizes_as_weights() -> None:
    y_train = _labels(500, (0.3, 0.4, 0.3), 1)
    good_test = _labels(300, (0.3, 0.4, 0.3), 2)
    bad_test = _labels(100, (0.3, 0.4, 0.3), 3)
    good = FoldPredictions(y_train, good_test, good_test)
    bad = FoldPredictions(y_train, bad_test, (bad_test + 1) % 3)
    pooled = _by_key(compare_with_baselines([good, bad], resamples=20).to_dict())
    assert pooled[("majority", "accuracy")]["model"] == pytest.approx(0.75)
    assert compare_with_baselines([good, bad]).test_samples == 400


def test_class_shares_count_each_class() -> None:
    assert class_shares(np.array([0, 1, 1, 2])) == [0.25, 0.5, 0.25]
    assert class_shares(np.array([], dtype=np.int64)) == [0.0, 0.0, 0.0]
