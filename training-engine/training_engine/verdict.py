"""Whether a model beats doing nothing: better on BOTH of two metrics against a baseline.

One rule for every target (``docs/evaluation.md``): a baseline is beaten only when the
model is better on both metrics, each comparison judged on a bootstrap interval over the
test samples. Classes are judged on accuracy AND macro-F1 against two baselines; a
regression target on R2 AND MAE against the train-mean baseline
(:func:`compare_regression_with_baseline`).

The class baselines, both fixed from the TRAIN part's labels:

- ``majority``: always predict the train part's most frequent class;
- ``random``: guess each class at its train share (expected metrics, computed exactly).

Each (baseline, metric) pair is compared on the model-minus-baseline difference with a
bootstrap interval over the test samples. Resampling test samples with replacement is the
same as drawing the confusion matrix from a multinomial over its cells, so a resample costs
nine numbers however large the test part, and all resamples are drawn in one call. Several
folds (walk-forward) are pooled: each fold is resampled on its own and the differences are
averaged with the folds' test sizes as weights.

A comparison is *won* when the whole interval lies above 0 and *lost* when it lies below.
The verdict follows from the eight results (see :func:`verdict_text`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from training_engine.errors import DataError
from training_engine.evaluation import CLASS_NAMES

BASELINES = ("majority", "random")
METRICS = ("accuracy", "macro_f1")
REGRESSION_BASELINE = "mean"
REGRESSION_METRICS = ("r2", "mae")
LOWER_IS_BETTER = frozenset({"mae"})
DEFAULT_RESAMPLES = 500
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class FoldPredictions:
    """One model's test predictions and the labels that fix its baselines."""

    y_train: np.ndarray
    y_test: np.ndarray
    y_pred: np.ndarray


@dataclass(frozen=True, slots=True)
class Comparison:
    """Model minus one baseline on one metric, with its bootstrap interval."""

    baseline: str
    metric: str
    model: float
    baseline_value: float
    difference: float
    ci_low: float
    ci_high: float

    @property
    def outcome(self) -> str:
        """``better``, ``worse`` or ``tied`` (the interval holds 0); for an error (MAE)
        a negative difference is better."""
        above, below = self.ci_low > 0, self.ci_high < 0
        if self.metric in LOWER_IS_BETTER:
            above, below = below, above
        if above:
            return "better"
        if below:
            return "worse"
        return "tied"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The verdict, its comparisons, and how the interval was drawn."""

    verdict: str
    comparisons: tuple[Comparison, ...]
    confidence: float
    resamples: int
    seed: int
    test_samples: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, each comparison with its outcome."""
        data = asdict(self)
        data["comparisons"] = [
            {**asdict(item), "outcome": item.outcome} for item in self.comparisons
        ]
        return data


def compare_with_baselines(
    folds: Sequence[FoldPredictions],
    *,
    n_classes: int = 3,
    seed: int = 0,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Verdict:
    """Compare the model with both baselines on accuracy and macro-F1.

    Args:
        folds: one entry per trained model (one for a single split).
        n_classes: number of classes.
        seed: seeds the bootstrap (the same inputs give the same intervals).
        resamples: bootstrap resamples.
        confidence: the interval's coverage.

    Raises:
        DataError: no folds, an empty train or test part, or mismatched lengths.
    """
    if not folds:
        raise DataError("no test predictions to compare")
    rng = np.random.default_rng(seed)
    weights = np.array([len(fold.y_test) for fold in folds], dtype=np.float64)
    if weights.min() == 0:
        raise DataError("a test part is empty: nothing to compare")
    weights /= weights.sum()
    # [fold, 1 + resamples, baseline, metric]: index 0 is the observed test part.
    model = np.zeros((len(folds), 1 + resamples, len(METRICS)))
    base = np.zeros((len(folds), 1 + resamples, len(BASELINES), len(METRICS)))
    for index, fold in enumerate(folds):
        counts = _confusion_counts(fold, n_classes)
        n = int(counts.sum())
        drawn = rng.multinomial(n, counts / n, size=resamples)
        matrices = np.concatenate([counts[None, :], drawn]).reshape(-1, n_classes, n_classes)
        rates = _train_rates(fold.y_train, n_classes)
        model[index] = _model_metrics(matrices)
        base[index] = _baseline_metrics(matrices.sum(axis=2), rates)
    pooled_model = np.einsum("f,frm->rm", weights, model)
    pooled_base = np.einsum("f,frbm->rbm", weights, base)
    comparisons = [
        _comparison(baseline, metric, pooled_model[:, m], pooled_base[:, b, m], confidence)
        for b, baseline in enumerate(BASELINES)
        for m, metric in enumerate(METRICS)
    ]
    return Verdict(
        verdict=verdict_text(comparisons),
        comparisons=tuple(comparisons),
        confidence=confidence,
        resamples=resamples,
        seed=seed,
        test_samples=int(sum(len(fold.y_test) for fold in folds)),
    )


def _comparison(
    baseline: str, metric: str, model: np.ndarray, base: np.ndarray, confidence: float
) -> Comparison:
    """``model`` and ``base``: the metric on the test part (index 0), then per resample."""
    difference = model - base
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(difference[1:], [tail, 1.0 - tail])
    return Comparison(
        baseline=baseline,
        metric=metric,
        model=float(model[0]),
        baseline_value=float(base[0]),
        difference=float(difference[0]),
        ci_low=float(low),
        ci_high=float(high),
    )


def class_balance_lines(balance: Mapping[str, Mapping[str, float]]) -> list[str]:
    """One line per part: ``train  1200 samples  BUY 0.31  HOLD 0.40  SELL 0.29``."""
    lines = ["class shares:"]
    for part, row in balance.items():
        shares = "  ".join(
            f"{name} {share:.2f}" for name, share in row.items() if name != "samples"
        )
        lines.append(f"  {part:<10} {int(row['samples']):>7} samples  {shares}")
    return lines


def verdict_lines(verdict: Mapping[str, Any]) -> list[str]:
    """Human-readable lines of a verdict's dict form: one per comparison, then the verdict."""
    if not verdict["comparisons"]:
        return [f"verdict: {verdict['verdict']}"]
    rows = [
        f"  {c['metric']:<9} vs {c['baseline']:<8} {c['model']:.3f} - {c['baseline_value']:.3f}"
        f" = {c['difference']:+.3f}  [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]  {c['outcome']}"
        for c in verdict["comparisons"]
    ]
    return [
        f"model against baselines ({verdict['confidence']:.0%} bootstrap intervals, "
        f"{verdict['test_samples']} test samples):",
        *rows,
        f"verdict: {verdict['verdict']}",
    ]


def verdict_text(comparisons: Sequence[Comparison]) -> str:
    """The sentence that follows from the comparisons.

    A baseline is beaten only when the model is better on accuracy AND macro-F1.
    """
    outcome = {(c.baseline, c.metric): c.outcome for c in comparisons}

    def beaten(baseline: str) -> bool:
        return all(outcome[(baseline, metric)] == "better" for metric in METRICS)

    if beaten("majority") and beaten("random"):
        return "beats both baselines"
    if beaten("random"):
        return "beats a random guess but not the majority baseline"
    if beaten("majority"):
        return "beats the majority baseline but not a random guess"
    if all(outcome[("random", metric)] == "worse" for metric in METRICS):
        return "worse than guessing"
    return "no better than guessing"


def class_shares(labels: np.ndarray, n_classes: int = 3) -> list[float]:
    """Share of each class among ``labels`` (zeros when there are none)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64).ravel(), minlength=n_classes)
    total = counts.sum()
    return [float(c / total) if total else 0.0 for c in counts[:n_classes]]


def class_balance(
    parts: Mapping[str, np.ndarray], class_names: Sequence[str] = CLASS_NAMES
) -> dict[str, Any]:
    """Per part: its sample count and the share of each class, by class name."""
    return {
        name: {
            "samples": len(labels),
            **dict(zip(class_names, class_shares(labels, len(class_names)), strict=True)),
        }
        for name, labels in parts.items()
    }


def compare_regression_with_baseline(
    y_train: np.ndarray,
    y_test: np.ndarray,
    y_pred: np.ndarray,
    *,
    seed: int = 0,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Verdict:
    """Compare a regression model with always predicting the train part's mean target.

    R2 and MAE of both on each bootstrap resample of the test samples (the same resample
    for both); the model beats the baseline only when it is better on both.

    Raises:
        DataError: an empty train or test part, or mismatched lengths.
    """
    train = np.asarray(y_train, dtype=np.float64).ravel()
    true = np.asarray(y_test, dtype=np.float64).ravel()
    pred = np.asarray(y_pred, dtype=np.float64).ravel()
    if train.size == 0 or true.size == 0:
        raise DataError("an empty train or test part: nothing to compare")
    if true.shape != pred.shape:
        raise DataError(f"y_test has {true.size} samples but y_pred has {pred.size}")
    model_error, base_error = pred - true, train.mean() - true
    # Per sample, the sums each resample needs: squared and absolute errors of both, y, y^2.
    terms = np.stack(
        [model_error**2, base_error**2, np.abs(model_error), np.abs(base_error), true, true**2],
        axis=1,
    )
    sums = _resampled_sums(terms, np.random.default_rng(seed), resamples)
    n = true.size
    spread = sums[:, 5] - sums[:, 4] ** 2 / n
    with np.errstate(divide="ignore", invalid="ignore"):
        model_r2 = np.where(spread > 0, 1.0 - sums[:, 0] / spread, 0.0)
        base_r2 = np.where(spread > 0, 1.0 - sums[:, 1] / spread, 0.0)
    values = {"r2": (model_r2, base_r2), "mae": (sums[:, 2] / n, sums[:, 3] / n)}
    comparisons = [
        _comparison(REGRESSION_BASELINE, metric, *values[metric], confidence)
        for metric in REGRESSION_METRICS
    ]
    return Verdict(
        verdict=regression_verdict_text(comparisons),
        comparisons=tuple(comparisons),
        confidence=confidence,
        resamples=resamples,
        seed=seed,
        test_samples=n,
    )


def regression_verdict_text(comparisons: Sequence[Comparison]) -> str:
    """The sentence for a regression target: beaten only when better on R2 AND MAE."""
    outcomes = {c.outcome for c in comparisons}
    if outcomes == {"better"}:
        return "beats the train-mean baseline"
    if outcomes == {"worse"}:
        return "worse than the train-mean baseline"
    return "no better than the train-mean baseline"


def _resampled_sums(terms: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """``[1 + resamples, columns]``: the column sums of ``terms`` ``[n, columns]`` over the
    test samples (row 0) and over each bootstrap resample of them.

    A resample is the count of each sample's draws (``bincount`` of n random indices), so
    memory stays O(n) and each resample costs O(n).
    """
    n = len(terms)
    sums = np.empty((1 + resamples, terms.shape[1]))
    sums[0] = terms.sum(axis=0)
    for row in range(1, resamples + 1):
        sums[row] = np.bincount(rng.integers(0, n, size=n), minlength=n) @ terms
    return sums


def _train_rates(y_train: np.ndarray, n_classes: int) -> np.ndarray:
    train = np.asarray(y_train, dtype=np.int64).ravel()
    if train.size == 0:
        raise DataError("the train part is empty: no class rates to guess at")
    return np.bincount(train, minlength=n_classes)[:n_classes] / train.size


def _confusion_counts(fold: FoldPredictions, n_classes: int) -> np.ndarray:
    true = np.asarray(fold.y_test, dtype=np.int64).ravel()
    pred = np.asarray(fold.y_pred, dtype=np.int64).ravel()
    if true.shape != pred.shape:
        raise DataError(f"y_test has {true.size} samples but y_pred has {pred.size}")
    cells = np.bincount(true * n_classes + pred, minlength=n_classes * n_classes)
    return cells.astype(np.float64)


def _macro(f1: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Mean F1 over the classes present (in truth or prediction), as scikit-learn does."""
    count = present.sum(axis=-1)
    total = np.where(present, f1, 0.0).sum(axis=-1)
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)


def _f1(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    denominator = precision + recall
    return np.divide(
        2 * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0
    )


def _model_metrics(matrices: np.ndarray) -> np.ndarray:
    """``[r, k, k]`` confusion matrices -> ``[r, 2]`` accuracy and macro-F1."""
    hits = np.diagonal(matrices, axis1=1, axis2=2)
    predicted, actual = matrices.sum(axis=1), matrices.sum(axis=2)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, actual, out=np.zeros_like(hits), where=actual > 0)
    accuracy = hits.sum(axis=1) / matrices.sum(axis=(1, 2))
    f1 = _macro(_f1(precision, recall), (predicted > 0) | (actual > 0))
    return np.stack([accuracy, f1], axis=1)


def _baseline_metrics(actual: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """``[r, k]`` true-class counts -> ``[r, baseline, metric]`` for both baselines."""
    shares = actual / actual.sum(axis=1, keepdims=True)
    n_classes = len(rates)
    majority = int(rates.argmax())
    # Majority: predicts one class; its precision is that class's share, its recall 1.
    one_hot = np.arange(n_classes) == majority
    precision = np.where(one_hot, shares, 0.0)
    recall = np.where(one_hot, 1.0, 0.0) * (actual > 0)
    majority_f1 = _macro(_f1(precision, recall), (actual > 0) | one_hot)
    # Random at the train rates: expected precision of class k is its test share, recall p_k.
    random_f1 = _macro(
        _f1(shares, np.broadcast_to(rates, shares.shape)), (actual > 0) | (rates > 0)
    )
    return np.stack(
        [
            np.stack([shares[:, majority], majority_f1], axis=1),
            np.stack([shares @ rates, random_f1], axis=1),
        ],
        axis=1,
    )
