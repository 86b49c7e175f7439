"""Fuzzy membership functions over numpy arrays (NaN in, NaN out).

Parameters follow KTRDR strategy files: triangular ``[a, b, c]`` (0 at a and
c, 1 at b), trapezoidal ``[a, b, c, d]`` (1 between b and c), gaussian
``[mean, sigma]``. A zero-width side (``a == b``) is a shoulder: membership is
1 from there on, so ``[0, 0, 30]`` is "at most 30, fading out".
"""

from __future__ import annotations

import numpy as np

from training_engine.strategy import FuzzySetSpec


def _rising(x: np.ndarray, start: float, top: float) -> np.ndarray:
    if top > start:
        return (x - start) / (top - start)
    return np.where(x >= top, 1.0, 0.0)


def _falling(x: np.ndarray, top: float, end: float) -> np.ndarray:
    if end > top:
        return (end - x) / (end - top)
    return np.where(x <= top, 1.0, 0.0)


def trapezoidal(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    """0 outside [a, d], rising on [a, b], 1 on [b, c], falling on [c, d]."""
    values = np.asarray(x, dtype=np.float64)
    membership = np.clip(np.minimum(_rising(values, a, b), _falling(values, c, d)), 0.0, 1.0)
    return np.where(np.isnan(values), np.nan, membership)


def triangular(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    """0 outside [a, c], 1 at b."""
    return trapezoidal(x, a, b, b, c)


def gaussian(x: np.ndarray, mean: float, sigma: float) -> np.ndarray:
    """exp(-(x - mean)^2 / (2 sigma^2))."""
    values = np.asarray(x, dtype=np.float64)
    result: np.ndarray = np.exp(-0.5 * ((values - mean) / sigma) ** 2)
    return result


def membership(x: np.ndarray, fuzzy_set: FuzzySetSpec) -> np.ndarray:
    """The membership of every value of ``x`` in one configured set."""
    p = fuzzy_set.parameters
    if fuzzy_set.type == "triangular":
        return triangular(x, p[0], p[1], p[2])
    if fuzzy_set.type == "trapezoidal":
        return trapezoidal(x, p[0], p[1], p[2], p[3])
    if fuzzy_set.type == "gaussian":
        return gaussian(x, p[0], p[1])
    raise ValueError(f"unknown fuzzy set type {fuzzy_set.type!r}")
