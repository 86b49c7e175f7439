"""The names a strategy may use, read from the registries that build the things they name.

Model types and activations come from ``training_engine.models``, optimizers and schedules
from ``training_engine.optim``. Those modules import torch, so they are read when a value is
validated or a schema is generated, not when this package is imported.
"""

from __future__ import annotations

PRICE_SOURCES = ("open", "high", "low", "close")
PRECISIONS = ("auto", "off", "bf16", "fp16")
_TRADE = ("BUY", "HOLD", "SELL")
_REGIMES = ("TRENDING_UP", "TRENDING_DOWN", "RANGING", "VOLATILE")
# Label source -> its classes in label order (none: a regression target).
LABEL_CLASSES: dict[str, tuple[str, ...]] = {
    "zigzag": _TRADE,
    "forward_return": (),
    "triple_barrier": _TRADE,
    "regime": _REGIMES,
    "multi_scale_regime": _REGIMES,
    "context": ("BULLISH", "BEARISH", "NEUTRAL"),
    "lookahead_move": _TRADE,
}
LABEL_SOURCES = tuple(LABEL_CLASSES)
VOL_METHODS = ("atr", "close")
# KTRDR's losses: the first two for classes, the others for a regression target.
LOSSES = ("cross_entropy", "focal", "huber", "mse")
# model.training.class_weights: none, or each class weighted by n / (classes * its train count).
CLASS_WEIGHTINGS = ("none", "balanced")
# training.data_split.mode: several symbols cut at common dates, or each on its own.
SPLIT_MODES = ("calendar", "per_symbol")
# training_data.bar_timestamp: what a data file's stamps mark.
BAR_TIMESTAMPS = ("open", "close")
# evaluation.method: one split, or K expanding-window folds.
EVALUATION_METHODS = ("single_split", "walk_forward")
# context_data (KTRDR v3): where a series beside the traded symbols comes from, and how it is
# aligned onto their bars (KTRDR has forward fill only).
CONTEXT_PROVIDERS = ("ib", "fred", "cftc_cot")
CONTEXT_ALIGNMENTS = ("forward_fill",)
# Fuzzy membership function -> how many parameters it takes.
FUZZY_TYPES = {"triangular": 3, "trapezoidal": 4, "gaussian": 2}


def model_types() -> tuple[str, ...]:
    from training_engine.models import MODEL_TYPES

    return MODEL_TYPES


def activations() -> tuple[str, ...]:
    from training_engine.models import ACTIVATIONS

    return tuple(ACTIVATIONS)


def optimizers() -> tuple[str, ...]:
    from training_engine.optim import OPTIMIZERS

    return OPTIMIZERS


def schedulers() -> tuple[str, ...]:
    from training_engine.optim import SCHEDULERS

    return SCHEDULERS
