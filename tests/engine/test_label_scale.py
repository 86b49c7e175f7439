"""Thresholds a labeller derives from prices are fitted on the train part, like normalisation.

KTRDR's regime labellers scale their ZigZag thresholds by the median ATR over the median
close of the bars they are given, and its CUSUM filter (``cusum_threshold: 0``) scales h by
the mean volatility. Run per part, each part would get its own thresholds: a bar's label
would depend on which part labels it and on how many bars follow it in that part (the
audit found 548 of 21,957 EURUSD 1h regime labels changed when later bars were appended).
The engine fits these scales once, on the train part, and labels every part with them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from training_engine.dataset import label_parts
from training_engine.labels import fit_label_scale, label_bars
from training_engine.sample_data import generate_hourly
from training_engine.strategy import LabelConfig

SCALED: dict[str, dict[str, Any]] = {
    "regime": {"source": "regime"},
    "multi_scale_regime": {"source": "multi_scale_regime", "macro_atr_mult": 2.0},
    "triple_barrier_cusum": {
        "source": "triple_barrier",
        "max_holding_period": 24,
        "vol_span": 20,
        "cusum_threshold": 0.0,
    },
}


def _bars(n: int = 3000) -> pd.DataFrame:
    return generate_hourly("AAPL", n, seed=7, index=0)


@pytest.mark.parametrize("source", sorted(SCALED))
def test_a_train_bar_gets_the_same_label_whichever_part_labels_it(source: str) -> None:
    config = LabelConfig(**SCALED[source])
    base = _bars()
    train, longer = np.arange(200, 1500), np.arange(200, 2900)
    first, second = label_parts(base, base.index, [train, longer], config)
    # The longer part's labels of the train bars: the same bars, the same labels.
    again = dict(zip(second.ends.tolist(), second.targets.tolist(), strict=True))
    assert len(first.ends) > 300
    assert [again.get(end) for end in first.ends.tolist()] == first.targets.tolist()


@pytest.mark.parametrize("source", sorted(SCALED))
def test_with_a_fitted_scale_appending_bars_changes_no_label_given(source: str) -> None:
    config = LabelConfig(**SCALED[source])
    base = _bars()
    scale = fit_label_scale(base.iloc[:1200], config)
    full = label_bars(base, config, scale).targets
    for end in range(1200, 3000, 150):
        part = label_bars(base.iloc[:end], config, scale).targets
        given = ~np.isnan(part)
        assert given.sum() > 100
        np.testing.assert_array_equal(part[given], full[:end][given], err_msg=f"end={end}")


@pytest.mark.parametrize("source", sorted(SCALED))
def test_without_a_fitted_scale_the_labeller_scales_by_the_bars_it_is_given(source: str) -> None:
    # KTRDR's whole-series rule, kept for labelling one series alone (the golden test).
    config = LabelConfig(**SCALED[source])
    base = _bars()
    own = label_bars(base.iloc[:1500], config).targets
    fitted = label_bars(base.iloc[:1500], config, fit_label_scale(base.iloc[:1500], config))
    np.testing.assert_array_equal(own, fitted.targets)
    assert fit_label_scale(base.iloc[:1500], config) != fit_label_scale(base, config)


def test_sources_without_a_price_scale_fit_nothing() -> None:
    base = _bars(500)
    for source in ("zigzag", "forward_return", "context", "lookahead_move"):
        assert fit_label_scale(base, LabelConfig(source=source)).is_empty
    given = LabelConfig(source="triple_barrier", cusum_threshold=0.01)
    assert fit_label_scale(base, given).is_empty  # h is given, not derived
