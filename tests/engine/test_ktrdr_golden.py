"""Labels agree with KTRDR's own labellers, run once on this module's series.

``data/ktrdr_golden_labels.json`` holds the labels KTRDR's code (ZigZagIndicator's
segment labels at aedd70ea; its triple-barrier, context, forward-return and multi-scale
regime labellers at HEAD) gave for :func:`golden_series` over the whole series. Run on
the same whole series, the engine gives the same label on every bar it labels; the bars
it leaves unlabelled are those whose label needs a price after the series' end (KTRDR
calls the zigzag tail HOLD and a regime NaN there).

The regime ZigZag thresholds (and a derived CUSUM h) are scaled by the prices: KTRDR
over the whole series, the engine over the train part only, applied to every part
(``test_label_scale.py``, docs/engine-data.md). Here the whole series is labelled as one
part, its own train part, so both rules give the same thresholds; in a training run the
engine's validation and test labels differ from KTRDR's on purpose where the train
part's thresholds differ from the whole series'.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from training_engine.labels import label_bars
from training_engine.strategy import LabelConfig

GOLDEN = Path(__file__).parent / "data" / "ktrdr_golden_labels.json"
SOURCES: dict[str, dict[str, Any]] = {
    "zigzag_2pct": {"source": "zigzag", "zigzag_threshold": 0.02},
    "zigzag_half_pct": {"source": "zigzag", "zigzag_threshold": 0.005},
    "triple_barrier_atr": {
        "source": "triple_barrier",
        "max_holding_period": 24,
        "vol_span": 20,
    },
    "triple_barrier_close": {
        "source": "triple_barrier",
        "max_holding_period": 12,
        "vol_span": 30,
        "vol_method": "close",
    },
    "context": {"source": "context", "horizon": 5},
    "forward_return": {"source": "forward_return", "horizon": 10},
    "multi_scale_regime": {
        "source": "multi_scale_regime",
        "macro_atr_mult": 2.0,
        "vol_lookback": 60,
    },
}


def golden_series(n: int = 800, seed: int = 2024) -> pd.DataFrame:
    """Hourly bars around 1.10 with fat-tailed ~0.1% moves and wicks."""
    rng = np.random.default_rng(seed)
    close = 1.10 * np.exp(np.cumsum(rng.standard_t(4, n) * 0.0012))
    open_ = np.concatenate([[close[0]], close[:-1]])
    wick = np.abs(rng.normal(0, 0.0008, (2, n))) * close
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + wick[0],
            "low": np.minimum(open_, close) - wick[1],
            "close": close,
            "volume": rng.integers(100, 1000, n).astype(float),
        },
        index=pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC"),
    )


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_labels_are_ktrdrs_on_every_bar_the_engine_labels(name: str) -> None:
    expected = np.array([np.nan if v is None else v for v in json.loads(GOLDEN.read_text())[name]])
    ours = label_bars(golden_series(), LabelConfig(**SOURCES[name])).targets
    labelled = ~np.isnan(ours)
    assert labelled.sum() > 0.5 * len(ours)
    np.testing.assert_allclose(ours[labelled], expected[labelled], rtol=1e-12)
    # What is left out is the end of the series (and the warm-up KTRDR leaves out too).
    last = int(np.flatnonzero(labelled)[-1])
    assert last >= len(ours) - 60
