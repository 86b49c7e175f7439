"""KTRDR's backtester, as its documented format says it reads a model folder and builds inputs.

Written for the tests from the facts on KTRDR (HEAD 2c5c7173; /work/helpers/ktrdr_facts.md
and docs/ktrdr.md), not from KTRDR's code; nothing here is used by the engine.

:func:`load_bundle` reads a folder as ``ModelBundle.load`` does: ``metadata_v3.json``
required; input size from ``features.json["feature_count"]``, else the number of
``resolved_features``; the network from ``config.json["model"]`` when it has an
``architecture`` (else the whole file when it has one at the top, else an MLP [64, 32]);
``num_classes`` from the config, else from ``output_type``; ``model.pt`` loaded strictly.

:func:`backtest_inputs` builds one symbol's inputs as KTRDR's ``FeatureCache`` does:

- ``nn_inputs`` resolved in order: a fuzzy set's memberships on each listed timeframe
  (``{tf}_{set}_{membership}``), a raw indicator (``{tf}_{ref}_raw``); ``"all"``: every
  training timeframe;
- on each timeframe's own bars, every indicator id computed (columns ``{id}`` for the first
  output and ``{id}.{output}`` for each output; parameters an indicator does not take are
  dropped), the memberships evaluated value by value (a triangle is 1 at its peak first,
  then 0 for ``x <= a`` or ``x >= c``; a trapezoid 0 for ``x <= a`` or ``x >= d`` first,
  then 1 on ``[b, c]``), raw values normalised with ``normalization_params``;
- the base timeframe's columns first, then each other timeframe in sorted order,
  reindexed onto the base bars by OPEN time with a forward fill, NaNs then filled with a
  back fill, a forward fill and 0 (a 1h bar at 08:00 reads the 4h bar of 08:00-12:00);
- the columns in ``resolved_features`` order.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from training_engine.indicators import find_ktrdr_indicator

_CLASSES = {
    "classification": 3,
    "regime_classification": 4,
    "context_classification": 3,
}
_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
}


@dataclass(frozen=True)
class KtrdrBundle:
    """What a loaded folder gives the backtester."""

    model: nn.Module
    metadata: dict[str, Any]
    config: dict[str, Any]

    @property
    def feature_names(self) -> list[str]:
        names: list[str] = self.metadata["resolved_features"]
        return names

    @property
    def temporal(self) -> bool:
        """LSTM/GRU get a window of ``sequence_length`` rows; an MLP one row."""
        return self.metadata.get("model_type", "mlp") in ("lstm", "gru")

    @property
    def decisions(self) -> dict[str, Any]:
        decisions: dict[str, Any] = self.config.get("decisions") or {
            "output_format": "classification"
        }
        return decisions


class _Recurrent(nn.Module):
    """KTRDR's LSTM/GRU network: the last layer's final hidden state through ``fc``."""

    def __init__(self, cell: str, inputs: int, config: dict[str, Any], outputs: int) -> None:
        super().__init__()
        architecture = config["architecture"]
        if "sequence_length" not in architecture:
            raise ValueError("sequence_length must be specified for LSTM/GRU models")
        layers = architecture.get("num_layers", 2)
        dropout = architecture.get("dropout", 0.2)
        kind = nn.LSTM if cell == "lstm" else nn.GRU
        self.cell = cell
        setattr(
            self,
            cell,
            kind(
                input_size=inputs,
                hidden_size=architecture.get("hidden_size", 64),
                num_layers=layers,
                batch_first=True,
                dropout=dropout if layers > 1 else 0.0,
            ),
        )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(architecture.get("hidden_size", 64), outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, hidden = getattr(self, self.cell)(x)
        final = hidden[0] if isinstance(hidden, tuple) else hidden
        out: torch.Tensor = self.fc(self.dropout(final[-1]))
        return out


def _mlp(inputs: int, config: dict[str, Any], outputs: int) -> nn.Sequential:
    architecture = config["architecture"]
    dropout = architecture.get("dropout", 0.2)
    activation = _ACTIVATIONS.get(str(architecture.get("activation", "relu")).lower(), nn.ReLU)
    layers: list[nn.Module] = []
    width = inputs
    for size in architecture["hidden_layers"]:
        layers += [nn.Linear(width, size), activation(), nn.Dropout(dropout)]
        width = size
    layers.append(nn.Linear(width, outputs))
    return nn.Sequential(*layers)


def build_network(config: dict[str, Any], inputs: int) -> nn.Module:
    """KTRDR's network for ``config.json``'s model section (``_build_model``)."""
    kind = str(config.get("type", "mlp")).lower()
    regression = config.get("output_format", "classification") == "regression"
    outputs = 1 if regression else int(config.get("num_classes", 3))
    if kind == "mlp":
        return _mlp(inputs, config, outputs)
    if kind in ("lstm", "gru"):
        return _Recurrent(kind, inputs, config, outputs)
    raise ValueError(f"Unsupported model type: {kind}")


def load_bundle(folder: Path) -> KtrdrBundle:
    """Load an exported folder as KTRDR's ``ModelBundle.load`` does."""
    metadata: dict[str, Any] = json.loads((folder / "metadata_v3.json").read_text())
    missing = [key for key in ("model_name", "strategy_name") if key not in metadata]
    if missing:  # KTRDR's ModelMetadata.from_dict indexes them
        raise KeyError(f"metadata_v3.json lacks {missing}")
    features = folder / "features.json"
    inputs = json.loads(features.read_text()).get("feature_count") if features.exists() else None
    inputs = inputs or len(metadata.get("resolved_features", []))
    config: dict[str, Any] = {}
    model_config: dict[str, Any] = {"type": "mlp", "architecture": {"hidden_layers": [64, 32]}}
    if (folder / "config.json").exists():
        config = json.loads((folder / "config.json").read_text())
        if "architecture" in (config.get("model") or {}):
            model_config = dict(config["model"])
        elif "architecture" in config:
            model_config = dict(config)
    if "num_classes" not in model_config:
        model_config["num_classes"] = _CLASSES.get(metadata.get("output_type", ""), 3)
    model = build_network(model_config, int(inputs))
    state = torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return KtrdrBundle(model.eval(), metadata, config)


def resolve_features(metadata: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``nn_inputs`` resolved in KTRDR's order: one entry per input, with what it reads."""
    timeframes = list(metadata["training_timeframes"])
    resolved: list[dict[str, Any]] = []
    for entry in metadata["nn_inputs"]:
        listed = timeframes if entry["timeframes"] == "all" else entry["timeframes"]
        if entry.get("fuzzy_set"):
            group = metadata["fuzzy_sets"][entry["fuzzy_set"]]
            members = [k for k in group if k != "indicator"]
            for timeframe in listed:
                for member in members:
                    resolved.append(
                        {
                            "name": f"{timeframe}_{entry['fuzzy_set']}_{member}",
                            "timeframe": timeframe,
                            "column": group["indicator"],
                            "membership": _membership_form(group[member]),
                        }
                    )
        else:
            for timeframe in listed:
                resolved.append(
                    {
                        "name": f"{timeframe}_{entry['raw_indicator']}_raw",
                        "timeframe": timeframe,
                        "column": entry["raw_indicator"],
                        "membership": None,
                    }
                )
    return resolved


def _membership_form(given: Any) -> tuple[str, list[float]]:
    if isinstance(given, list):  # shorthand: a triangle
        return "triangular", [float(v) for v in given]
    return str(given.get("type", "triangular")), [float(v) for v in given["parameters"]]


def membership_value(kind: str, p: list[float], x: float) -> float:
    """One value's membership, as KTRDR's pipeline evaluates a Series (value by value)."""
    if math.isnan(x):
        return math.nan
    if kind == "triangular":
        a, b, c = p
        if x == b:
            return 1.0
        if x <= a or x >= c:
            return 0.0
        eps = np.finfo(float).eps
        return (x - a) / max(b - a, eps) if x < b else (c - x) / max(c - b, eps)
    if kind == "trapezoidal":
        a, b, c, d = p
        if x <= a or x >= d:
            return 0.0
        if x < b:
            return (x - a) / max(b - a, np.finfo(float).eps)
        if x <= c:
            return 1.0
        return (d - x) / max(d - c, np.finfo(float).eps)
    if kind == "gaussian":
        z = (x - p[0]) / p[1]
        return float(np.exp(-0.5 * z * z))
    raise ValueError(f"unknown membership {kind}")


def _indicator_columns(
    indicators: Mapping[str, Mapping[str, Any]], ids: set[str], frame: pd.DataFrame
) -> dict[str, pd.Series]:
    """``{id}`` (first output) and ``{id}.{output}`` of each indicator id, on ``frame``."""
    columns: dict[str, pd.Series] = {}
    for indicator_id in sorted(ids):
        definition = dict(indicators[indicator_id])
        entry = find_ktrdr_indicator(str(definition.pop("type")))
        assert entry is not None, f"KTRDR's registry has {indicator_id}'s type"
        params = {k: v for k, v in definition.items() if k in entry.defaults}
        outputs = entry.compute(frame, **params).astype("float64")
        outputs = outputs.replace([np.inf, -np.inf], np.nan)
        columns[indicator_id] = outputs.iloc[:, 0]
        for output in outputs.columns:
            columns[f"{indicator_id}.{output}"] = outputs[output]
    return columns


def backtest_inputs(
    metadata: Mapping[str, Any], frames: Mapping[str, pd.DataFrame]
) -> pd.DataFrame:
    """One symbol's network inputs on its base bars, in ``resolved_features`` order."""
    resolved = resolve_features(metadata)
    params = metadata.get("normalization_params") or {}
    per_timeframe: dict[str, dict[str, pd.Series]] = {}
    for timeframe in dict.fromkeys(item["timeframe"] for item in resolved):
        frame = frames[timeframe]
        mine = [item for item in resolved if item["timeframe"] == timeframe]
        ids = {str(item["column"]).split(".", 1)[0] for item in mine}
        columns = _indicator_columns(metadata["indicators"], ids, frame)
        values: dict[str, pd.Series] = {}
        for item in mine:
            source = columns[item["column"]]
            if item["membership"] is not None:
                kind, p = item["membership"]
                values[item["name"]] = source.map(lambda x, k=kind, q=p: membership_value(k, q, x))
            else:
                values[item["name"]] = _normalised(source, params.get(item["name"]))
        per_timeframe[timeframe] = values
    base = metadata["training_timeframes"][0]
    base_index = frames[base].index
    parts = [pd.DataFrame(per_timeframe[base], index=base_index)]
    for timeframe in sorted(t for t in per_timeframe if t != base):
        higher = pd.DataFrame(per_timeframe[timeframe], index=frames[timeframe].index)
        aligned = higher.reindex(base_index, method="ffill")
        if aligned.isna().to_numpy().any():
            aligned = aligned.bfill().ffill().fillna(0.0)
        parts.append(aligned)
    features = pd.concat(parts, axis=1)
    return features[metadata["resolved_features"]]


def _normalised(values: pd.Series, params: Mapping[str, Any] | None) -> pd.Series:
    method = (params or {}).get("method", "none")
    if method == "zscore":
        return (values - params["mean"]) / params["std"] if params["std"] != 0 else values * 0.0
    if method == "minmax":
        span = params["max"] - params["min"]
        return (values - params["min"]) / span if span != 0 else values * 0.0
    return values


def bundle_outputs(bundle: KtrdrBundle, inputs: pd.DataFrame, bars: pd.DatetimeIndex) -> np.ndarray:
    """The network's outputs at ``bars``: one row (MLP) or the window ending there (LSTM/GRU)."""
    values = inputs.to_numpy(np.float32)
    positions = inputs.index.get_indexer(bars)
    assert (positions >= 0).all(), "every bar is in the inputs"
    if bundle.temporal:
        length = int(bundle.metadata["sequence_length"])
        windows = np.stack([values[p - length + 1 : p + 1] for p in positions])
        x = torch.from_numpy(windows)
    else:
        x = torch.from_numpy(values[positions])
    with torch.no_grad():
        out: np.ndarray = bundle.model(x).numpy()
    return out
