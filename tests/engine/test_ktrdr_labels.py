"""KTRDR's label sources on hand-made series, and no label that reads past its part."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from training_engine.labels import (
    BUY,
    HOLD,
    SELL,
    UNLABELLED,
    _multi_scale_regime_with,
    atr_threshold,
    context,
    cusum_events,
    forward_return,
    multi_scale_regime,
    regime,
    triple_barrier,
    uniqueness_weights,
    zigzag,
)

U = UNLABELLED


def _walk(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random walk close with a high and low around it, and bursts of volatility."""
    rng = np.random.default_rng(seed)
    sigma = np.where(np.arange(n) % 300 >= 270, 0.04, 0.01)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, sigma)))
    spread = close * rng.uniform(0.001, 0.01, n)
    return close, close + spread, close - spread


def test_zigzag_labels_legs_between_pivots_and_leaves_the_running_extreme_open() -> None:
    close = np.array([100.0, 105, 112, 108, 99, 95, 104, 106, 101])
    # pivots at 10%: 0 (first bar), 2 (112 after +12%), 5 (95: 99 reversed, 95 lower),
    # 7 (106, +11.6% from 95: the running extreme, may still move up)
    assert zigzag(close, zigzag_threshold=0.10).tolist() == [
        HOLD, BUY, HOLD, SELL, SELL, HOLD, BUY, U, U,
    ]  # fmt: skip


def test_zigzag_without_a_threshold_move_labels_only_the_first_bar() -> None:
    close = np.array([100.0, 101, 99, 102])
    assert zigzag(close, zigzag_threshold=0.05).tolist() == [HOLD, U, U, U]


def test_forward_return_is_the_simple_return_over_the_horizon() -> None:
    close = np.array([100.0, 110.0, 99.0, 121.0])
    np.testing.assert_allclose(forward_return(close, 1)[:3], [0.1, -0.1, 22.0 / 99.0])
    np.testing.assert_allclose(forward_return(close, 2)[:2], [-0.01, 0.1])
    assert np.isnan(forward_return(close, 2)[2:]).all()


def test_context_compares_the_forward_return_with_two_thresholds() -> None:
    close = np.array([100.0, 101.0, 99.0, 100.2, 100.0])
    # +1% bullish (0), -1.98% bearish (1), +1.2% bullish, -0.2% neutral (2), no future
    assert context(close, horizon=1).tolist() == [0, 1, 0, 2, U]


def test_triple_barrier_takes_the_first_barrier_touched() -> None:
    close = np.array([100.0, 101, 105, 103, 99, 96, 97, 97, 97])
    high, low = close * 1.01, close * 0.99  # (high - low) / close = 2% on every bar
    result = triple_barrier(
        close, high, low, pt_multiplier=2.0, sl_multiplier=1.5, max_holding_period=3, vol_span=2
    )
    # barriers +4% / -3% of the entry close:
    # t0 100: bar 2 high 106.05 >= 104            -> BUY after 2 bars
    # t1 101: bar 2 high 106.05 >= 105.04         -> BUY after 1
    # t2 105: bar 4 low 98.01 <= 101.85           -> SELL after 2
    # t3 103: bar 4 low 98.01 <= 99.91            -> SELL after 1
    # t4 99:  bar 5 low 95.04 <= 96.03            -> SELL after 1
    # t5 96:  nothing touched; 97/96 - 1 = 1.04% < 0.5 * 2% * sqrt(3) -> HOLD after 3
    assert result.labels.tolist() == [BUY, BUY, SELL, SELL, SELL, HOLD, U, U, U]
    assert result.holding_periods.tolist() == [2, 1, 2, 1, 1, 3, 0, 0, 0]
    np.testing.assert_allclose(result.upper_barriers[:6], 0.04)
    np.testing.assert_allclose(result.lower_barriers[:6], 0.03)


def test_triple_barrier_bar_touching_both_barriers_goes_by_its_close() -> None:
    close = np.array([100.0, 100.0, 101.0])
    high = np.array([101.0, 101.0, 110.0])
    low = np.array([99.0, 99.0, 90.0])
    result = triple_barrier(close, high, low, max_holding_period=1, vol_span=1)
    # t0: no touch, return 0 -> HOLD; t1: bar 2 touches both, closes 101 >= 100 -> BUY
    assert result.labels.tolist() == [HOLD, BUY, U]


def test_triple_barrier_needs_more_bars_than_the_vol_span() -> None:
    close, high, low = _walk(60, seed=3)
    assert (triple_barrier(close, high, low, max_holding_period=5, vol_span=60).labels == U).all()


def test_uniqueness_weights_average_inverse_concurrency() -> None:
    holds = np.array([2, 1, 2, 1, 1, 3, 0, 0, 0])
    # concurrency by bar: 1 2 1 2 1 1 1 1 -> raw weights .75 .5 .75 .5 1 1 (mean .75)
    expected = [1.0, 2 / 3, 1.0, 2 / 3, 4 / 3, 4 / 3]
    weights = uniqueness_weights(holds, normalize=True)
    np.testing.assert_allclose(weights[:6], expected)
    assert np.isnan(weights[6:]).all()
    np.testing.assert_allclose(
        uniqueness_weights(holds, normalize=False)[:6], [0.75, 0.5] * 2 + [1, 1]
    )


def test_cusum_marks_bars_where_a_move_accumulates_past_the_threshold() -> None:
    returns = np.array([0.025, 0.004, 0.018, -0.03])
    close = 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(returns)]))
    # s+ 0.015 > h at bar 1 (reset); s- reaches -0.02 < -h at bar 4
    assert cusum_events(close, cusum_threshold=0.01).tolist() == [False, True, False, False, True]


def test_regime_reads_the_signed_efficiency_ratio() -> None:
    close = np.array([100.0, 101, 102, 103, 102, 101, 100, 99.5])
    # vol_lookback 1: a one-return history has std 0, so nothing is volatile
    # SER over 2 bars: t1 2/2 up; t2 0 ranging; t3 -1, t4 -1, t5 -1.5/1.5 down
    labels = regime(close, horizon=2, trending_threshold=0.3, vol_lookback=1)
    assert labels.tolist() == [U, 0, 2, 1, 1, 1, U, U]


def test_regime_is_volatile_when_forward_volatility_jumps() -> None:
    returns = np.array([0.01, -0.01, 0.01, -0.01, 0.1, -0.1])
    close = 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(returns)]))
    # RV ratio (2 forward / 2 past log returns): t2 1.0 (SER 0 -> ranging), t3 5.5, t4 10
    labels = regime(close, horizon=2, vol_crisis_threshold=2.0, vol_lookback=2)
    assert labels.tolist() == [U, U, 2, 3, 3, U, U]


def test_atr_threshold_is_a_multiple_of_median_atr_over_median_close() -> None:
    close = np.array([10.0, 11.0, 12.0])
    # true ranges 1, 1.5, 1.5; 2-bar means 1.25, 1.5 -> median 1.375; median close 11
    assert atr_threshold(close, close + 0.5, close - 0.5, 3.0, 2) == pytest.approx(0.375)


def test_multi_scale_regime_labels_settled_macro_legs_by_micro_progression() -> None:
    close = np.array([100.0, 110, 104, 115, 108, 125, 95, 99, 90, 100, 70, 80])
    # macro pivots at 20%: 0, 5 (125), 10 (70, running); micro at 5%: 0 1 2 3 4 5 8 9 10 11.
    # Leg 0..5 rises and its micro lows 100, 104, 108 rise: trending up. The leg
    # from 5 ends at the running extreme, so it is not labelled yet.
    labels = _multi_scale_regime_with(
        close, (0.2, 0.05), atr_period=1, vol_lookback=2, vol_crisis_threshold=2.0,
        progression_tolerance=0.5,
    )  # fmt: skip
    assert labels.tolist() == [0] * 5 + [U] * 7


def _prefix_labellers() -> dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]]:
    """Each label source as labels(close, high, low); NaN returns become -1."""

    def returns(c: np.ndarray, h: np.ndarray, lo: np.ndarray) -> np.ndarray:
        values = forward_return(c, 20)
        return np.where(np.isnan(values), U, np.round(values * 1e12)).astype(np.int64)

    return {
        "zigzag": lambda c, h, lo: zigzag(c, 0.025),
        "forward_return": returns,
        "triple_barrier": lambda c, h, lo: triple_barrier(c, h, lo).labels,
        "regime": lambda c, h, lo: regime(c),
        "multi_scale_regime": lambda c, h, lo: _multi_scale_regime_with(
            c,
            (0.03, 0.01),
            atr_period=14,
            vol_lookback=120,
            vol_crisis_threshold=2.0,
            progression_tolerance=0.5,
        ),
        "context": lambda c, h, lo: context(c),
    }


@pytest.mark.parametrize("source", sorted(_prefix_labellers()))
def test_labels_of_a_part_never_change_when_later_bars_exist(source: str) -> None:
    label = _prefix_labellers()[source]
    close, high, low = _walk(900, seed=7)
    full = label(close, high, low)
    assert (full != U).sum() > 300, "the walk should give plenty of labels"
    for end in range(150, 900, 37):
        part = label(close[:end], high[:end], low[:end])
        given = part != U
        np.testing.assert_array_equal(part[given], full[:end][given], err_msg=f"end={end}")
        assert not given[-1], "the last bar of a part can never be labelled"


@pytest.mark.parametrize("source", [*sorted(_prefix_labellers()), "multi_scale_regime_atr"])
def test_changing_prices_after_a_part_changes_no_label_inside_it(source: str) -> None:
    labellers = _prefix_labellers()
    labellers["multi_scale_regime_atr"] = lambda c, h, lo: multi_scale_regime(c, h, lo)
    label = labellers[source]
    close, high, low = _walk(900, seed=11)
    start, end = 200, 700
    other = [series.copy() for series in (close, high, low)]
    for series in other:
        series[end:] *= np.random.default_rng(5).uniform(0.5, 2.0, len(series) - end)
        series[:start] *= 0.7
    part = label(close[start:end], high[start:end], low[start:end])
    again = label(*(series[start:end] for series in other))
    np.testing.assert_array_equal(part, again)
    assert (part != U).any()
