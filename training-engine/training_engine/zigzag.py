"""ZigZag pivots of a price series, the way KTRDR finds them.

The first bar is a pivot. Until the price has moved ``threshold`` (a fraction)
away from it, no direction is known; the first bar that gets that far becomes
the running extreme and sets the direction. In an up leg every higher price
moves the running extreme forward; a fall of ``threshold`` from it confirms it
as a pivot, and that falling bar becomes the running extreme of a down leg
(and the mirror image for down legs).

The walk is online: whether bar i is a confirmed pivot depends on prices up to
the bar that confirmed it, never on later ones. Only the running extreme (the
last pivot) can still move when more bars arrive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class ZigZagPivots:
    """Pivot bar positions in time order; the last one is the running extreme."""

    indices: np.ndarray  # int64 positions; indices[0] == 0 for non-empty input
    latest: np.ndarray  # per bar t: position of the last pivot known after walking 0..t

    @property
    def confirmed(self) -> np.ndarray:
        """Pivots no later bar can move: all but the running extreme (bar 0 always)."""
        if len(self.indices) <= 1:
            return self.indices
        return self.indices[:-1]


def zigzag_pivots(prices: np.ndarray, threshold: float) -> ZigZagPivots:
    """Walk ``prices`` once and return its pivots (see the module docstring).

    Args:
        prices: one price per bar (close by default), float.
        threshold: reversal size as a fraction of the running extreme, > 0.
    """
    values = np.asarray(prices, dtype=np.float64)
    if len(values) == 0:
        return ZigZagPivots(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
    pivots = [0]
    # One pass over Python floats and ints: element access on numpy arrays costs ~5x more.
    prices_list: list[float] = values.tolist()
    latest = [0] * len(prices_list)
    extreme_price = prices_list[0]
    direction = 0  # 0 unknown, +1 up leg, -1 down leg
    for i in range(1, len(prices_list)):
        price = prices_list[i]
        if not math.isfinite(price) or extreme_price == 0:
            latest[i] = pivots[-1]
            continue
        change = (price - extreme_price) / extreme_price
        if direction == 0:
            if abs(change) >= threshold:
                direction = 1 if change > 0 else -1
                pivots.append(i)
                extreme_price = price
        elif (direction == 1 and price > extreme_price) or (
            direction == -1 and price < extreme_price
        ):
            pivots[-1] = i  # the running extreme moves on
            extreme_price = price
        elif change * direction <= -threshold:
            direction = -direction  # the running extreme is now a confirmed pivot
            pivots.append(i)
            extreme_price = price
        latest[i] = pivots[-1]
    return ZigZagPivots(np.asarray(pivots, dtype=np.int64), np.asarray(latest, dtype=np.int64))
