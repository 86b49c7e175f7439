"""The names a strategy may use, and the registries that build what they name.

A leaf: it imports nothing. ``training_engine.models``, ``optim`` and ``losses`` build what
these names name and import them from here; the strategy models validate against them
without importing the registries (an import-linter contract forbids it, see pyproject.toml).
The indicators' names and parameters are read from ``training_engine.indicators`` itself
(``indicator_table``): that registry imports nothing of the strategy.
"""

from __future__ import annotations

# training_engine.models: the networks, and the activations of their hidden layers.
MODEL_TYPES = ("mlp", "lstm", "gru", "transformer")
ACTIVATIONS = ("relu", "tanh", "gelu", "leaky_relu", "sigmoid", "silu", "elu")
# training_engine.optim; the last three schedulers are KTRDR's lr_scheduler types (stepped
# once per epoch).
OPTIMIZERS = ("adam", "adamw", "sgd", "muon")
SCHEDULERS = ("none", "cosine", "onecycle", "plateau", "step", "exponential", "reduce_on_plateau")
PRICE_SOURCES = ("open", "high", "low", "close")
PRECISIONS = ("auto", "off", "bf16", "fp16")
# The trade classes in label order: what most label sources predict, and the default.
CLASS_NAMES = ("BUY", "HOLD", "SELL")
_REGIMES = ("TRENDING_UP", "TRENDING_DOWN", "RANGING", "VOLATILE")
# Label source -> its classes in label order (none: a regression target).
LABEL_CLASSES: dict[str, tuple[str, ...]] = {
    "zigzag": CLASS_NAMES,
    "forward_return": (),
    "triple_barrier": CLASS_NAMES,
    "regime": _REGIMES,
    "multi_scale_regime": _REGIMES,
    "context": ("BULLISH", "BEARISH", "NEUTRAL"),
    "lookahead_move": CLASS_NAMES,
}
LABEL_SOURCES = tuple(LABEL_CLASSES)
VOL_METHODS = ("atr", "close")
# training_engine.losses (KTRDR's), for classes and for a regression target.
CLASSIFICATION_LOSSES = ("cross_entropy", "focal")
REGRESSION_LOSSES = ("huber", "mse")
LOSSES = CLASSIFICATION_LOSSES + REGRESSION_LOSSES
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
