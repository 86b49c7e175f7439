"""Fuzzy membership functions."""

from __future__ import annotations

import numpy as np
import pytest
from training_engine.fuzzy import gaussian, membership, trapezoidal, triangular
from training_engine.strategy import FuzzySetSpec


def test_triangular_rises_peaks_and_falls() -> None:
    x = np.array([0.0, 10.0, 20.0, 30.0, 40.0, 50.0])
    assert triangular(x, 10, 20, 40).tolist() == [0.0, 0.0, 1.0, 0.5, 0.0, 0.0]


def test_zero_width_side_is_a_shoulder() -> None:
    x = np.array([0.0, 15.0, 30.0, 45.0])
    assert triangular(x, 0, 0, 30).tolist() == [1.0, 0.5, 0.0, 0.0]
    assert trapezoidal(x, 30, 45, 100, 100).tolist() == [0.0, 0.0, 0.0, 1.0]


def test_trapezoidal_is_flat_between_its_inner_points() -> None:
    x = np.array([5.0, 10.0, 15.0, 20.0, 25.0])
    assert trapezoidal(x, 0, 10, 20, 30).tolist() == [0.5, 1.0, 1.0, 1.0, 0.5]


def test_gaussian_is_one_at_the_mean_and_falls_with_distance() -> None:
    values = gaussian(np.array([50.0, 60.0]), 50, 10)
    assert values[0] == 1.0
    assert values[1] == pytest.approx(np.exp(-0.5))


def test_nan_stays_nan() -> None:
    spec = FuzzySetSpec(name="low", type="triangular", parameters=(0.0, 0.0, 30.0))
    result = membership(np.array([np.nan, 15.0]), spec)
    assert np.isnan(result[0]) and result[1] == 0.5
