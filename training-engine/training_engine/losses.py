"""Training losses as KTRDR names them (``training.loss``), with its class weighting.

Classification: ``cross_entropy`` (default) or ``focal`` (gamma ``focal_gamma``). With
``model.training.class_weights: balanced`` (the default) both weigh each class by its
inverse frequency in the train labels, as KTRDR does (weights scaled to sum to the number
of classes; a class absent from train gets 0); ``none`` weighs every class the same. Regression:
``huber`` (default for a regression target, delta ``huber_delta``) or ``mse``.
Per-sample weights (triple-barrier uniqueness) scale each sample's loss; KTRDR draws
samples with a weighted sampler instead, which is the same in expectation. A weighted loss
is divided by the summed weights of the batch (class times sample weight for
cross-entropy, as torch's weighted cross-entropy), so it stays on an unweighted scale.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from training_engine.errors import StrategyConfigError
from training_engine.strategy import TrainingSettings
from training_engine.strategy.names import CLASSIFICATION_LOSSES, REGRESSION_LOSSES

# (model outputs, targets, per-sample weights or None) -> scalar loss
LossFunction = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


def inverse_frequency_weights(y_train: np.ndarray, n_classes: int) -> np.ndarray:
    """KTRDR's class weights: 1/count per class, scaled to sum to ``n_classes``."""
    counts = np.bincount(np.asarray(y_train, dtype=np.int64), minlength=n_classes)[:n_classes]
    weights = np.zeros(n_classes, dtype=np.float32)
    present = counts > 0
    if not present.any():
        return np.ones(n_classes, dtype=np.float32)
    weights[present] = 1.0 / counts[present]
    return (weights / weights.sum() * n_classes).astype(np.float32)


def loss_class_weights(mode: str, y_train: np.ndarray, n_classes: int) -> np.ndarray | None:
    """The class weights ``model.training.class_weights`` asks for; None for ``none`` or a
    regression target (``n_classes`` 0)."""
    if mode == "none" or n_classes == 0:
        return None
    return inverse_frequency_weights(y_train, n_classes)


def _weighted_mean(per_sample: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    if weights is None:
        return per_sample.mean()
    return (per_sample * weights).sum() / weights.sum().clamp_min(1e-12)


def build_loss(
    settings: TrainingSettings, class_weights: torch.Tensor | None, regression: bool
) -> LossFunction:
    """The loss the strategy names; ``class_weights`` for classification only.

    Raises:
        StrategyConfigError: a classification loss for a regression target or the reverse.
    """
    name = settings.loss or ("huber" if regression else "cross_entropy")
    allowed = REGRESSION_LOSSES if regression else CLASSIFICATION_LOSSES
    if name not in allowed:
        kind = "a regression target" if regression else "classes"
        raise StrategyConfigError(
            "training.loss", f"'{name}' does not fit {kind}; expected one of {', '.join(allowed)}"
        )

    def loss(outputs: torch.Tensor, targets: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
        outputs = outputs.float()
        if name == "huber":
            per = F.huber_loss(outputs.squeeze(-1), targets, delta=settings.huber_delta,
                               reduction="none")  # fmt: skip
        elif name == "mse":
            per = F.mse_loss(outputs.squeeze(-1), targets, reduction="none")
        else:
            log_p = F.log_softmax(outputs, dim=1).gather(1, targets.unsqueeze(1)).squeeze(1)
            alpha = class_weights[targets] if class_weights is not None else 1.0
            if name == "focal":
                per = -alpha * (1 - log_p.exp()) ** settings.focal_gamma * log_p
            else:
                per = -alpha * log_p
                if class_weights is not None:
                    # torch's weighted cross-entropy: normalised by the weights of the batch
                    total = class_weights[targets] if w is None else class_weights[targets] * w
                    return (per if w is None else per * w).sum() / total.sum().clamp_min(1e-12)
        return _weighted_mean(per, w)

    return loss
