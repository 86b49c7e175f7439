"""The JSON files of KTRDR's model folder: config, features, metadata and metadata_v3.

What each KTRDR era reads (docs/ktrdr.md):

- ``config.json``: the strategy as given, with the ``model`` section KTRDR builds the network
  from (``type``, ``architecture``, ``num_classes``, ``output_format``) and ``decisions``
  with the ``output_format`` its decision function reads; the architecture again at the top
  (KTRDR before its HEAD builds an MLP from there).
- ``metadata.json`` and ``features.json``: what KTRDR's ``ModelStorage`` lists and loads.
- ``metadata_v3.json``: what KTRDR's backtester (``ModelBundle.load``) rebuilds the strategy
  and its inputs from; written only for a model KTRDR can backtest as trained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import torch

from training_engine.dataset import NormalizationStats, PreparedDataset
from training_engine.ktrdr_inputs import KtrdrInputs
from training_engine.ktrdr_weights import KTRDR_CLASSES, KTRDR_RECURRENT
from training_engine.strategy import StrategyConfig
from training_engine.strategy.names import CLASS_NAMES, LABEL_CLASSES

# KTRDR's output_type per class list (its DecisionFunction names the classes by it).
_OUTPUT_TYPES = {
    CLASS_NAMES: "classification",
    LABEL_CLASSES["regime"]: "regime_classification",
    LABEL_CLASSES["context"]: "context_classification",
}


def engine_architecture(strategy: StrategyConfig) -> dict[str, Any]:
    """The network's shape as the strategy gives it (what our summary reports)."""
    return {
        "hidden_layers": list(strategy.model.hidden_layers),
        "activation": strategy.model.activation,
        "dropout": strategy.model.dropout,
    }


def ktrdr_model_section(strategy: StrategyConfig, data: PreparedDataset) -> dict[str, Any]:
    """``config.json["model"]``: what KTRDR's ``_build_model`` builds the same network from."""
    model = strategy.model
    architecture = engine_architecture(strategy)
    if model.type in KTRDR_RECURRENT:
        # KTRDR's defaults (hidden 64, 2 layers) are not ours: every value is written.
        architecture = {
            "hidden_size": model.hidden_layers[0],
            "num_layers": model.num_layers,
            "dropout": model.dropout,
            "sequence_length": data.lookback,
        }
    regression = data.is_regression
    return {
        "type": model.type,
        "architecture": architecture,
        "num_classes": 1 if regression else len(data.class_names),
        "output_format": "regression" if regression else "classification",
    }


def ktrdr_config(strategy: StrategyConfig, data: PreparedDataset) -> dict[str, Any]:
    """``config.json``: the strategy as given, with KTRDR's ``model`` and ``decisions``."""
    config: dict[str, Any] = dict(strategy.raw)
    model = {**_mapping(config.get("model")), **ktrdr_model_section(strategy, data)}
    decisions = _mapping(config.get("decisions"))
    config["name"] = strategy.name
    config["model"] = model
    config["decisions"] = {**decisions, "output_format": model["output_format"]}
    # KTRDR before its HEAD builds the network from config.json's top-level architecture.
    config["architecture"] = model["architecture"]
    return config


def engine_input_names(data: PreparedDataset) -> list[str]:
    """``rsi_14[t-2]``, ...: one name per network input, oldest bar first as the model flattens."""
    lags = range(data.lookback - 1, -1, -1)
    return [f"{name}[t-{lag}]" for lag in lags for name in data.feature_names]


def features_file(data: PreparedDataset, inputs: KtrdrInputs | None) -> dict[str, Any]:
    """``features.json``: the inputs in order; ``feature_count`` is KTRDR's input size.

    Args:
        inputs: KTRDR's names of the inputs when the folder is backtestable (the input
            standardisation is then in the weights and ``normalization_params``); None
            for the earlier form, whose inputs are standardised with ``scaling_info``.
    """
    names = engine_input_names(data)
    scaling: dict[str, Any] = {"requires_scaling": False, "reason": "not_scaled"}
    if inputs is not None:
        scaling["reason"] = (
            "memberships: the train part's standardisation is folded into the first layer; "
            "raw indicator inputs: metadata_v3.json normalization_params"
        )
        names = inputs.names
    elif data.normalization is not None:
        # KTRDR expects a pickled scikit-learn scaler; the statistics are given instead.
        scaling = {
            "requires_scaling": True,
            "scaler_type": "standard",
            "per_bar_feature": data.normalization.to_dict(),
        }
    return {
        "model_version": "mixed_features_v1",
        "feature_type": "mixed_features",
        "feature_names": names,
        "engine_feature_names": engine_input_names(data),
        "feature_count": len(names),
        "scaling_info": scaling,
        "feature_importance": {},
    }


def metadata_file(
    strategy: StrategyConfig,
    data: PreparedDataset,
    version: int,
    summary: Mapping[str, Any],
) -> dict[str, Any]:
    """``metadata.json``, what KTRDR's ``ModelStorage`` reads (``is_trained``)."""
    training = summary["training_metrics"]
    loadable = bool(summary["model_info"]["ktrdr_loadable"])
    return {
        "strategy_name": strategy.name,
        "symbol": "-".join(data.symbols),
        "timeframe": data.base_timeframe,
        "created_at": datetime.now().isoformat(),
        "model_type": KTRDR_CLASSES[strategy.model.type] if loadable else strategy.model.type,
        "model_version": f"v{version}",
        "architecture_type": "mixed_features",
        "input_size": summary["model_info"]["input_size"],
        "pytorch_version": torch.__version__,
        "is_trained": True,
        "training_summary": {
            "epochs": training["epochs_trained"],
            "final_accuracy": training["final_train_accuracy"],
            "best_val_accuracy": training["best_val_accuracy"],
        },
        "feature_engineering": {
            "removed": False,
            "scaler_required": data.normalization is not None,
            "fuzzy_only": False,
        },
        "ktrdr_loadable": loadable,
        "ktrdr_unsupported": summary.get("ktrdr_unsupported"),
    }


def metadata_v3_file(
    strategy: StrategyConfig,
    data: PreparedDataset,
    inputs: KtrdrInputs,
    model_name: str,
    training_metrics: Mapping[str, Any],
) -> dict[str, Any]:
    """``metadata_v3.json``, from which KTRDR's backtester rebuilds the strategy and inputs."""
    base = data.base_timeframe
    context = strategy.raw.get("context_data")
    entries = [dict(e) for e in context if isinstance(e, Mapping)] if context else []
    return {
        "model_name": model_name,
        "strategy_name": strategy.name,
        "created_at": datetime.now(UTC).isoformat(),
        "strategy_version": "3.0",
        "indicators": inputs.indicators,
        "fuzzy_sets": inputs.fuzzy_sets,
        "nn_inputs": inputs.nn_inputs,
        "resolved_features": inputs.names,
        "training_symbols": list(data.symbols),
        # KTRDR takes the first timeframe as the base.
        "training_timeframes": [base, *(t for t in strategy.timeframes if t != base)],
        "training_metrics": {
            key: float(value)
            for key, value in training_metrics.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        },
        "output_type": _OUTPUT_TYPES.get(data.class_names, "classification")
        if data.class_names
        else "regression",
        "model_type": strategy.model.type,
        "sequence_length": data.lookback if strategy.model.type in KTRDR_RECURRENT else None,
        "normalization_params": normalization_params(inputs, data.normalization),
        "context_data_config": entries or None,
        "context_source_ids": context_source_ids(entries),
    }


def normalization_params(
    inputs: KtrdrInputs, normalization: NormalizationStats | None
) -> dict[str, dict[str, Any]]:
    """KTRDR's ``normalization_params`` of the raw inputs: our train z-score, or none."""
    params: dict[str, dict[str, Any]] = {}
    for index, (name, raw) in enumerate(zip(inputs.names, inputs.raw, strict=True)):
        if not raw:
            continue
        if normalization is None:
            params[name] = {"method": "none"}
        else:
            mean, std = normalization.mean[index], normalization.std[index]
            params[name] = {"method": "zscore", "mean": float(mean), "std": float(std)}
    return params


def context_source_ids(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """The ids KTRDR's context providers give the data of ``context_data`` entries."""
    ids: list[str] = []
    for entry in entries:
        provider = entry.get("provider")
        if provider == "ib" and entry.get("symbol"):
            ids.append(str(entry["symbol"]))
        elif provider == "fred" and entry.get("series"):
            given = entry["series"]
            series = [str(s) for s in (given if isinstance(given, list) else [given])]
            ids += [f"fred_{s}" for s in series]
            if len(series) >= 2:
                ids.append(f"yield_spread_{series[0]}_{series[1]}")
        elif provider == "cftc_cot" and entry.get("report"):
            ids += [f"cot_{entry['report']}_net_pos", f"cot_{entry['report']}_net_pct"]
    return ids


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}
