"""Splitting several symbols on common calendar boundaries.

Split one by one, symbols whose data start or end at different dates overlap in time:
one symbol's validation or test period lies inside another's train period, and a model
trained on a near-copy of a symbol remembers the other's future. Here every part is cut
at the same instants for all symbols:

- train: samples whose label reads no bar at or after ``b1``;
- validation: samples whose window starts at or after ``b1`` and whose label reads no
  bar at or after ``b2``;
- test: samples whose window starts at or after ``b2`` (and, in a walk-forward fold,
  that end before ``b3``).

So every symbol's train part ends (labels included) before any symbol's validation
window begins, and likewise for validation and test: the gap is kept in time. The
boundaries are the symbols' own split boundaries (the first window start of each part),
averaged with the symbols' sample counts as weights; when all symbols share one
calendar this is exactly the per-symbol split. A symbol may get few or no samples in a
part (data that ends early has no test part): the report shows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class SymbolTimeline:
    """When each candidate sample of one symbol starts, ends and stops reading its label.

    Times are int64 nanoseconds since the epoch (UTC), one per candidate sample in time
    order; ``own_parts`` holds the positions of the symbol's own (per-symbol) split.
    """

    symbol: str
    rows: np.ndarray  # the feature row each candidate sample ends at
    window_start: np.ndarray
    sample_end: np.ndarray
    label_end: np.ndarray
    own_parts: tuple[np.ndarray, np.ndarray, np.ndarray]

    def own_boundaries(self) -> tuple[int, int]:
        """The first window start of this symbol's own validation and test parts."""
        return int(self.window_start[self.own_parts[1][0]]), int(
            self.window_start[self.own_parts[2][0]]
        )


def common_boundaries(timelines: Sequence[SymbolTimeline]) -> tuple[int, int]:
    """``(b1, b2)``: the symbols' own boundaries, averaged with their sample counts as weights."""
    own = [t.own_boundaries() for t in timelines]
    b1 = _weighted_mean(timelines, [first for first, _ in own])
    b2 = _weighted_mean(timelines, [second for _, second in own])
    return b1, b2


def boundaries_at(
    timelines: Sequence[SymbolTimeline], fractions: Sequence[float]
) -> tuple[int, ...]:
    """For each fraction q: the window start of the sample at q of each symbol's samples,
    averaged over the symbols with their sample counts as weights (walk-forward folds)."""
    cuts = []
    for fraction in fractions:
        own = []
        for timeline in timelines:
            n = len(timeline.window_start)
            own.append(int(timeline.window_start[min(int(fraction * n), n - 1)]))
        cuts.append(_weighted_mean(timelines, own))
    return tuple(cuts)


def _weighted_mean(timelines: Sequence[SymbolTimeline], times: Sequence[int]) -> int:
    # Python integers: exact on nanosecond epochs, so equal calendars give their own dates.
    weights = [len(t.sample_end) for t in timelines]
    return sum(w * t for w, t in zip(weights, times, strict=True)) // sum(weights)


def parts_by_time(
    timeline: SymbolTimeline, b1: int, b2: int, b3: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions of the train, validation and test samples for boundaries ``b1 < b2 (< b3)``."""
    train = timeline.label_end < b1
    validation = (timeline.window_start >= b1) & (timeline.label_end < b2)
    test = timeline.window_start >= b2
    if b3 is not None:
        test &= timeline.sample_end < b3
    return np.flatnonzero(train), np.flatnonzero(validation), np.flatnonzero(test)
