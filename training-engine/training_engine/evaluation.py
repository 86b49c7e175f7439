"""Test-set metrics, for the model and for a do-nothing baseline (majority class, train mean),
and the loss and accuracy of a model on each part."""

from __future__ import annotations

import numpy as np

from training_engine.errors import DataError
from training_engine.job import ClassificationReport, PartScore, RegressionReport
from training_engine.strategy.names import CLASS_NAMES


def _class_name(index: int, names: tuple[str, ...] = CLASS_NAMES) -> str:
    return names[index] if index < len(names) else str(index)


def classification_report(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_classes: int = 3,
    class_names: tuple[str, ...] = CLASS_NAMES,
) -> ClassificationReport:
    """Accuracy, macro-F1, per-class precision/recall and the confusion matrix.

    Args:
        y_true: true class per sample (0 BUY, 1 HOLD, 2 SELL).
        y_pred: predicted class per sample.
        n_classes: number of classes.

    Returns:
        The report; ``confusion_matrix[t][p]`` counts samples of class t predicted as p.
        Macro-F1 averages over the classes that occur in ``y_true`` or ``y_pred``
        (as scikit-learn does), so an absent class does not count as a zero.

    Raises:
        DataError: the arrays differ in length or hold a class outside ``0..n_classes-1``.
    """
    true = np.asarray(y_true, dtype=np.int64).ravel()
    pred = np.asarray(y_pred, dtype=np.int64).ravel()
    if true.shape != pred.shape:
        raise DataError(f"y_true has {true.size} samples but y_pred has {pred.size}")
    for name, values in (("y_true", true), ("y_pred", pred)):
        if values.size and (values.min() < 0 or values.max() >= n_classes):
            raise DataError(f"{name} holds a class outside 0..{n_classes - 1}")
    matrix = np.bincount(true * n_classes + pred, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )
    hits = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    actual = matrix.sum(axis=1).astype(np.float64)
    precision = np.divide(hits, predicted, out=np.zeros(n_classes), where=predicted > 0)
    recall = np.divide(hits, actual, out=np.zeros(n_classes), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(n_classes), where=denom > 0)
    present = (predicted > 0) | (actual > 0)
    return ClassificationReport(
        accuracy=float(hits.sum() / true.size) if true.size else 0.0,
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        precision={_class_name(i, class_names): float(precision[i]) for i in range(n_classes)},
        recall={_class_name(i, class_names): float(recall[i]) for i in range(n_classes)},
        confusion_matrix=matrix.astype(int).tolist(),
        support=int(true.size),
    )


def majority_baseline_report(
    y_train: np.ndarray,
    y_test: np.ndarray,
    n_classes: int = 3,
    class_names: tuple[str, ...] = CLASS_NAMES,
) -> ClassificationReport:
    """The report of always predicting the most frequent class of the TRAIN part."""
    train = np.asarray(y_train, dtype=np.int64).ravel()
    if train.size == 0:
        raise DataError("the train part is empty: no majority class to predict")
    majority = int(np.bincount(train, minlength=n_classes).argmax())
    test = np.asarray(y_test, dtype=np.int64).ravel()
    return classification_report(test, np.full_like(test, majority), n_classes, class_names)


def regression_report(y_true: np.ndarray, y_pred: np.ndarray) -> RegressionReport:
    """R2, MAE, RMSE and directional accuracy (share of samples whose sign is right).

    Raises:
        DataError: the arrays differ in length.
    """
    true = np.asarray(y_true, dtype=np.float64).ravel()
    pred = np.asarray(y_pred, dtype=np.float64).ravel()
    if true.shape != pred.shape:
        raise DataError(f"y_true has {true.size} samples but y_pred has {pred.size}")
    if true.size == 0:
        return RegressionReport(r2=0.0, mae=0.0, rmse=0.0, directional_accuracy=0.0, support=0)
    error = pred - true
    spread = float(((true - true.mean()) ** 2).sum())
    r2 = 1.0 - float((error**2).sum()) / spread if spread > 0 else 0.0
    return RegressionReport(
        r2=r2,
        mae=float(np.abs(error).mean()),
        rmse=float(np.sqrt((error**2).mean())),
        directional_accuracy=float((np.sign(pred) == np.sign(true)).mean()),
        support=int(true.size),
    )


def mean_baseline_report(y_train: np.ndarray, y_test: np.ndarray) -> RegressionReport:
    """The report of always predicting the mean target of the TRAIN part."""
    train = np.asarray(y_train, dtype=np.float64).ravel()
    if train.size == 0:
        raise DataError("the train part is empty: no mean to predict")
    test = np.asarray(y_test, dtype=np.float64).ravel()
    return regression_report(test, np.full_like(test, train.mean()))


def part_score(outputs: np.ndarray, targets: np.ndarray, *, regression: bool) -> PartScore:
    """Loss and accuracy of a model's raw outputs on one part (0 and 0 for an empty part).

    Classes: mean cross-entropy of the logits ``[n, classes]`` and accuracy; a regression
    target: mean squared error of the first output and directional accuracy.
    """
    if len(targets) == 0:
        return PartScore(loss=0.0, accuracy=0.0)
    logits = np.asarray(outputs, dtype=np.float64)
    if regression:
        values, truth = logits[:, 0], np.asarray(targets, dtype=np.float64)
        return PartScore(
            loss=float(((values - truth) ** 2).mean()),
            accuracy=float((np.sign(values) == np.sign(truth)).mean()),
        )
    classes = np.asarray(targets, dtype=np.int64)
    top = logits.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    picked = logits[np.arange(len(classes)), classes]
    return PartScore(
        loss=float((log_norm - picked).mean()),
        accuracy=float((logits.argmax(axis=1) == classes).mean()),
    )
