"""The strategies the golden test pins: example files, the tests' inline ones, overrides, errors.

The inline strategies private to other test modules are copied here as they were when the
fixture was written; ``tests.engine.synthetic.make_strategy`` is shared, so it is called.

Each case is a callable that parses (and maybe overrides) a strategy, so the fixture
records exactly what ``parse_strategy``/``with_overrides`` produced when it was written.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from training_engine.strategy import (
    StrategyConfig,
    load_strategy,
    parse_strategy,
    with_overrides,
)

from tests.engine.synthetic import make_strategy

ROOT = Path(__file__).resolve().parents[3]
STRATEGIES_DIR = ROOT / "config" / "strategies"
FIXTURE = Path(__file__).with_name("strategies.json")

Case = Callable[[], StrategyConfig]


def _example() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((STRATEGIES_DIR / "momentum_mlp.yaml").read_text())
    return data


FEATURES_TEST = {
    "name": "test",
    "training_data": {
        "symbols": {"list": ["AAPL"]},
        "timeframes": {"list": ["1h", "4h"], "base_timeframe": "1h"},
    },
    "indicators": [
        {"name": "rsi", "period": 14},
        {"name": "macd", "fast_period": 12, "slow_period": 26, "signal_period": 9},
        {"name": "momentum", "period": 1},
    ],
    "fuzzy_sets": {"rsi_14": {"oversold": {"type": "triangular", "parameters": [0, 0, 30]}}},
    "model": {"features": {"include_price_context": True}},
}


def features_test(**overrides: Any) -> StrategyConfig:
    """The features tests' strategy, top-level sections replaced by ``overrides``."""
    return parse_strategy({**copy.deepcopy(FEATURES_TEST), **overrides})


DATASET_TEST = {
    "name": "test",
    "training_data": {
        "symbols": {"list": ["AAPL", "MSFT"]},
        "timeframes": {"list": ["1h", "4h"], "base_timeframe": "1h"},
    },
    "indicators": [{"name": "rsi", "period": 14}, {"name": "roc", "period": 10}],
    "model": {"features": {"lookback_periods": 4}},
    "training": {"labels": {"source": "zigzag", "zigzag_threshold": 0.01, "label_lookahead": 9}},
}


def dataset_test(**overrides: Any) -> StrategyConfig:
    """The dataset tests' strategy, top-level sections replaced by ``overrides``."""
    return parse_strategy({**copy.deepcopy(DATASET_TEST), **overrides})


BENCH = {
    "name": "bench",
    "training_data": {"symbols": {"list": ["BENCH"]}, "timeframes": {"list": ["1h"]}},
    "indicators": [{"name": "rsi"}],
    "model": {
        "type": "mlp",
        "architecture": {"hidden_layers": [256, 256], "dropout": 0.0},
        "training": {
            "optimizer": "adam",
            "learning_rate": 1e-3,
            "batch_size": 256,
            "epochs": 3,
            "gradient_clip": None,
            "early_stopping": {"enabled": False},
            "device": "cpu",
        },
    },
}


def ktrdr_v3(indicators: dict[str, Any], fuzzy_sets: dict[str, Any]) -> dict[str, Any]:
    """A KTRDR v3 strategy: indicators keyed by id, fuzzy groups pointing at them."""
    return {
        "name": "v3",
        "training_data": {
            "symbols": {"mode": "single", "symbol": "EURUSD"},
            "timeframes": {"mode": "single", "timeframe": "1h"},
        },
        "indicators": indicators,
        "fuzzy_sets": fuzzy_sets,
        "nn_inputs": [{"fuzzy_set": name, "timeframes": "all"} for name in fuzzy_sets],
        "model": {"type": "mlp", "training": {"epochs": 2}},
        "training": {"labels": {"source": "zigzag", "zigzag_threshold": 0.02}},
    }


_LOW = {"type": "triangular", "parameters": [0, 15, 25]}


def _changed(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = _example()
    change(data)
    return data


def _files() -> dict[str, Case]:
    return {
        f"file:{path.name}": (lambda p=path: load_strategy(p))
        for path in sorted(STRATEGIES_DIR.glob("*.yaml"))
    }


def _momentum() -> StrategyConfig:
    return load_strategy(STRATEGIES_DIR / "momentum_mlp.yaml")


PARSED: dict[str, Case] = {
    **_files(),
    "synthetic": make_strategy,
    "synthetic_lstm": lambda: make_strategy(
        {"type": "lstm", "hidden_layers": [8], "num_layers": 2}
    ),
    "synthetic_transformer": lambda: make_strategy(
        {"type": "transformer", "hidden_layers": [8], "num_heads": 2}
    ),
    "features_test": lambda: parse_strategy(copy.deepcopy(FEATURES_TEST)),
    "features_momentum_no_model": lambda: parse_strategy(
        {
            **FEATURES_TEST,
            "indicators": [{"name": "momentum", "period": 1}],
            "fuzzy_sets": {},
            "model": {},
        }
    ),
    "dataset_test": lambda: parse_strategy(copy.deepcopy(DATASET_TEST)),
    "bench": lambda: parse_strategy(copy.deepcopy(BENCH)),
    "v3_fuzzy_groups": lambda: parse_strategy(
        ktrdr_v3(
            {"adx_14": {"type": "adx", "period": 14}},
            {
                "adx_14": {"indicator": "adx_14", "weak": _LOW},
                "trend_strength": {"indicator": "adx_14", "low": _LOW},
            },
        )
    ),
    "v3_parameter_spellings": lambda: parse_strategy(
        ktrdr_v3(
            {
                "bbands_20_2": {"type": "bbands", "period": 20, "multiplier": 2.5},
                "stoch_14_3_3": {"type": "stoch", "k_period": 14, "d_period": 3, "smooth_k": 3},
            },
            {},
        )
    ),
    "v3_stochastic_sets_by_leading_parameters": lambda: parse_strategy(
        ktrdr_v3(
            {"stoch_14_3": {"type": "stochastic", "k_period": 14, "d_period": 3}},
            {"stochastic_14_3_3": {"low": _LOW}},
        )
    ),
    "descriptions_and_unused_sections": lambda: parse_strategy(
        {
            **_example(),
            "description": "why",
            "version": "3.0",
            "decisions": {"output_format": "classification"},
        }
    ),
    "unused_nested_keys": lambda: parse_strategy(
        _changed(
            lambda d: (
                d["model"]["architecture"].update(output_activation="softmax"),
                d["model"]["training"]["early_stopping"].update(monitor="val_loss"),
                d["training_data"].update(start_date="2020-01-01", history_required=200),
                d["training"]["labels"].update(horizon=7),
                d["indicators"][0].update(color="red"),
                d["model"].update(name="m", version="2"),
                d["training"].update(method="supervised"),
            )
        )
    ),
    "all_training_settings_and_forms": lambda: parse_strategy(
        _changed(
            lambda d: d["model"]["training"].update(
                optimizer="AdamW",
                weight_decay=0.01,
                momentum=0.5,
                scheduler=None,
                gradient_clip=0,
                gradient_accumulation_steps=2,
                mixed_precision=False,
                seed=0,
                deterministic=True,
                compile=False,
                device=" CUDA:0 ",
                early_stopping=False,
                epochs=3.0,
            )
        )
    ),
    "forward_return_labels_and_int_layers": lambda: parse_strategy(
        _changed(
            lambda d: (
                d["training"].update(
                    labels={"source": "forward_return", "horizon": 3, "threshold": 0.002},
                    data_split={"train": 0.7, "validation": 0.15, "test": 0.15},
                ),
                d["model"]["architecture"].update(hidden_layers=24, activation="GELU"),
                d["model"]["training"].update(mixed_precision=True, scheduler="onecycle"),
            )
        )
    ),
    "every_indicator_with_defaults": lambda: parse_strategy(
        {
            "name": "all",
            "indicators": [
                {"name": kind}
                for kind in [
                    "sma",
                    "ema",
                    "rsi",
                    "macd",
                    "bbands",
                    "atr",
                    "stoch",
                    "adx",
                    "roc",
                    "momentum",
                    "williams_r",
                    "cci",
                    "mfi",
                    "obv",
                ]
            ],
            "fuzzy_sets": {
                "bbands": {"mid": {"type": "gaussian", "parameters": [0, 1]}},
                "williams": {"low": {"parameters": [-100, -90, -80]}},
            },
        }
    ),
    "aliases_and_sources": lambda: parse_strategy(
        {
            "name": " spaced ",
            "training_data": {"symbols": ["AAPL", "BRK.B"], "timeframes": ["1d", "1w"]},
            "indicators": [
                {"name": "WilliamsR", "period": 10, "source": "HIGH"},
                {"name": "bollinger_bands", "period": 10, "num_std": 1.5},
                {"name": "ema", "period": 5, "source": "open", "feature_id": "fast_ema"},
            ],
        }
    ),
    "no_training_data": lambda: parse_strategy({"indicators": [{"name": "rsi"}]}),
    "timeframe_single_base_only": lambda: parse_strategy(
        {
            "name": "base_only",
            "training_data": {
                "symbols": {"symbol": "EURUSD"},
                "timeframes": {"base_timeframe": "4h"},
            },
            "indicators": {"rsi_7": {"type": "rsi", "period": 7}},
        }
    ),
    "overrides_service_config": lambda: with_overrides(
        _momentum(),
        training={"epochs": 3, "batch_size": 32, "early_stopping": {"enabled": False}},
    ),
    "overrides_cli_like": lambda: with_overrides(
        _momentum(),
        training={"device": "cpu", "seed": 7, "epochs": 1, "learning_rate": 0.1},
        symbols=["MSFT", "AAPL"],
        timeframes=["4h", "1h"],
    ),
    "overrides_forms": lambda: with_overrides(
        _momentum(),
        training={
            "early_stopping": {"patience": 2},
            "mixed_precision": True,
            "gradient_clip": 0,
            "scheduler": "Cosine",
        },
        timeframes=["1d"],
    ),
    "overrides_early_stopping_bool": lambda: with_overrides(
        _momentum(), training={"early_stopping": False}
    ),
}


def _set_bad(path: list[Any], value: Any) -> Case:
    def case() -> StrategyConfig:
        data = _example()
        target: Any = data
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        return parse_strategy(data)

    return case


ERRORS: dict[str, Case] = {
    # tests/engine/test_strategy.py
    "misspelt_epochs": _set_bad(["model", "training", "epocs"], 10),
    "indicator_typo": _set_bad(["indicators", 0], {"name": "rsi", "peroid": 14}),
    "bad_batch_size": _set_bad(["model", "training", "batch_size"], "lots"),
    "negative_zigzag_threshold": _set_bad(["training", "labels", "zigzag_threshold"], -0.5),
    "fuzzy_secondary_output": lambda: parse_strategy(
        ktrdr_v3(
            {"adx_14": {"type": "adx", "period": 14}},
            {"di_plus": {"indicator": "adx_14.di_plus", "low": _LOW}},
        )
    ),
    # tests/sessions/test_queue.py and the services
    "indicators_not_a_list": lambda: parse_strategy({"name": "x", "indicators": "rsi"}),
    "override_epochs_zero": lambda: with_overrides(_momentum(), training={"epochs": 0}),
    "override_epochs_text": lambda: with_overrides(_momentum(), training={"epochs": "many"}),
    "override_unknown_key": lambda: with_overrides(_momentum(), training={"epocs": 3}),
    "override_far_unknown_key": lambda: with_overrides(_momentum(), training={"colour": 3}),
    "override_empty_symbols": lambda: with_overrides(_momentum(), symbols=[]),
    "override_bad_symbol": lambda: with_overrides(_momentum(), symbols=["../x"]),
    "override_bad_timeframe": lambda: with_overrides(_momentum(), timeframes=["hourly"]),
    "override_bad_device": lambda: with_overrides(_momentum(), training={"device": ""}),
    "override_bad_early_stopping": lambda: with_overrides(
        _momentum(), training={"early_stopping": {"patience": "x"}}
    ),
    # other refusals users meet
    "root_not_a_mapping": lambda: parse_strategy([1, 2]),  # type: ignore[arg-type]
    "empty_name": _set_bad(["name"], " "),
    "no_indicators": lambda: parse_strategy({"name": "x"}),
    "empty_indicators": lambda: parse_strategy({"name": "x", "indicators": []}),
    "unknown_indicator": _set_bad(["indicators", 0], {"name": "hull_ma"}),
    "indicator_without_name": _set_bad(["indicators", 0], {"period": 3}),
    "macd_fast_not_below_slow": _set_bad(
        ["indicators", 1], {"name": "macd", "fast_period": 30, "slow_period": 26}
    ),
    "bad_indicator_source": _set_bad(["indicators", 0], {"name": "rsi", "source": "volume"}),
    "bad_std_dev": _set_bad(["indicators", 0], {"name": "bbands", "std_dev": 0}),
    "duplicate_feature_id": _set_bad(["indicators", 2], {"name": "rsi", "period": 14}),
    "misspelt_top_level": _set_bad(["indicatorz"], []),
    "misspelt_architecture": _set_bad(["model", "architecture", "dropuot"], 0.1),
    "bad_dropout": _set_bad(["model", "architecture", "dropout"], 1.5),
    "bad_activation": _set_bad(["model", "architecture", "activation"], "swish"),
    "bad_model_type": _set_bad(["model", "type"], "cnn"),
    "empty_hidden_layers": _set_bad(["model", "architecture", "hidden_layers"], []),
    "bad_hidden_layer": _set_bad(["model", "architecture", "hidden_layers"], [32, 0]),
    "bad_optimizer": _set_bad(["model", "training", "optimizer"], "adagrad"),
    "bad_scheduler": _set_bad(["model", "training", "scheduler"], "cyclic"),
    "bad_precision": _set_bad(["model", "training", "mixed_precision"], "fp8"),
    "bool_learning_rate": _set_bad(["model", "training", "learning_rate"], True),
    "zero_learning_rate": _set_bad(["model", "training", "learning_rate"], 0),
    "bad_momentum": _set_bad(["model", "training", "momentum"], 2),
    "bad_lookback": _set_bad(["model", "features", "lookback_periods"], 0),
    "text_flag": _set_bad(["model", "features", "scale_features"], "yes"),
    "model_not_a_mapping": _set_bad(["model"], "mlp"),
    "bad_label_source": _set_bad(["training", "labels", "source"], "oracle"),
    "misspelt_label_key": _set_bad(["training", "labels", "label_lookahed"], 5),
    "bad_split_sum": _set_bad(["training", "data_split", "test"], 0.3),
    "bad_split_value": _set_bad(["training", "data_split", "test"], "x"),
    "base_timeframe_not_listed": _set_bad(
        ["training_data", "timeframes"], {"list": ["1h"], "base_timeframe": "4h"}
    ),
    "bad_symbol": _set_bad(["training_data", "symbols"], {"list": ["AA PL"]}),
    "symbols_list_not_a_list": _set_bad(["training_data", "symbols"], {"list": "AAPL"}),
    "bad_timeframe": _set_bad(["training_data", "timeframes"], ["hourly"]),
    "fuzzy_unknown_indicator": _set_bad(["fuzzy_sets", "vwap"], {"low": _LOW}),
    "fuzzy_wrong_count": _set_bad(
        ["fuzzy_sets", "rsi_14", "low"], {"type": "triangular", "parameters": [1, 2]}
    ),
    "fuzzy_unordered": _set_bad(
        ["fuzzy_sets", "rsi_14", "low"], {"type": "triangular", "parameters": [3, 2, 1]}
    ),
    "fuzzy_bad_sigma": _set_bad(
        ["fuzzy_sets", "rsi_14", "low"], {"type": "gaussian", "parameters": [3, 0]}
    ),
    "fuzzy_bad_type": _set_bad(
        ["fuzzy_sets", "rsi_14", "low"], {"type": "bell", "parameters": [3, 1]}
    ),
    "fuzzy_misspelt_key": _set_bad(
        ["fuzzy_sets", "rsi_14", "low"], {"type": "triangular", "parameter": [1, 2, 3]}
    ),
}
