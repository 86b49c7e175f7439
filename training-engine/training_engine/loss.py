"""The training loss: cross-entropy, weighted by class and by sample when asked.

``class_weights: balanced`` weights class k by ``n / (classes * count_k)`` over the train
labels (scikit-learn's rule), so every class weighs the same in total. Sample weights (a
labeller's, such as triple-barrier uniqueness) multiply in. The weighted loss is divided by
the summed weights of the batch, so it stays on the scale of an unweighted mean.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def loss_class_weights(mode: str, y_train: np.ndarray, n_classes: int) -> np.ndarray | None:
    """Float32 weight per class for ``mode`` (``none``: None); absent classes get 1."""
    if mode == "none":
        return None
    counts = np.bincount(np.asarray(y_train, dtype=np.int64).ravel(), minlength=n_classes)
    counts = counts[:n_classes].astype(np.float64)
    present = counts > 0
    weights = np.ones(n_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.astype(np.float32)


def weighted_cross_entropy(
    logits: torch.Tensor,
    y: torch.Tensor,
    class_weight: torch.Tensor | None = None,
    sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean cross-entropy with optional per-class and per-sample weights."""
    if sample_weight is None:
        return F.cross_entropy(logits, y, weight=class_weight)
    losses = F.cross_entropy(logits, y, weight=class_weight, reduction="none")
    weights = sample_weight.to(losses.dtype)
    total = weights if class_weight is None else weights * class_weight[y].to(losses.dtype)
    return (losses * weights).sum() / total.sum().clamp_min(1e-12)
