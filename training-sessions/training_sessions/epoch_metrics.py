"""The metrics of an epoch, named once: by the engine's ``EpochMetrics``.

The epoch table's columns, the latest values of a status, the event log's entries and
the kept results all take their names from here, and a test holds the table to them.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

from training_engine.job import EpochMetrics

# train_loss, val_loss, val_accuracy, learning_rate, epoch_seconds, samples_per_second.
EPOCH_METRICS: tuple[str, ...] = tuple(f.name for f in fields(EpochMetrics) if f.name != "epoch")
# A status shows the latest of these; how long an epoch took is in the history only.
STATUS_METRICS: tuple[str, ...] = tuple(name for name in EPOCH_METRICS if name != "epoch_seconds")

# What a batch's progress event carries besides its counters (the rest come per epoch).
BATCH_EVENT_METRICS: tuple[str, ...] = ("train_loss", "learning_rate")

# One epoch as stored: {"epoch": n, <metric>: value, ...}.
EpochValues = dict[str, Any]


def epoch_values(source: Any) -> EpochValues:
    """An epoch's row from anything with ``epoch`` and the metric attributes.

    Args:
        source: an ``EpochMetrics`` of a result's history, or an ``epoch`` progress event.
    """
    return {"epoch": source.epoch, **{name: getattr(source, name) for name in EPOCH_METRICS}}


def reported_metrics(source: Any, names: tuple[str, ...] = EPOCH_METRICS) -> dict[str, Any]:
    """The metrics ``source`` carries (None: not reported), a diverged one (NaN, inf) as None.

    JSON, and PostgreSQL's json, have no NaN: a diverged loss is kept as null.
    """
    reported: dict[str, Any] = {}
    for name in names:
        value = getattr(source, name)
        if value is not None:
            reported[name] = value if math.isfinite(value) else None
    return reported
