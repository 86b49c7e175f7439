"""Strategy files: KTRDR-format YAML parsed into one typed, validated config.

Sections the engine uses are checked key by key: a value of the wrong kind, or a
key that looks like a misspelling of one the engine reads (``epocs``), is rejected
with a ``StrategyConfigError`` naming its dotted path. Keys the engine has no use
for (``decisions``, ``deployment``, ``nn_inputs``, ...) are collected and reported
in a single warning, so existing KTRDR strategies train here unchanged.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

import yaml

from training_engine.errors import StrategyConfigError

logger = logging.getLogger(__name__)

T = TypeVar("T")

SUPPORTED_INDICATORS: dict[str, tuple[str, ...]] = {
    # indicator type -> the parameters it takes, in the order used to build its feature id
    "sma": ("period",),
    "ema": ("period",),
    "rsi": ("period",),
    "macd": ("fast_period", "slow_period", "signal_period"),
    "bbands": ("period", "std_dev"),
    "atr": ("period",),
    "stoch": ("k_period", "d_period", "smooth_k"),
    "adx": ("period",),
    "roc": ("period",),
    "momentum": ("period",),
    "williams_r": ("period",),
    "cci": ("period",),
    "mfi": ("period",),
    "obv": (),
}
INDICATOR_ALIASES = {
    "williamsr": "williams_r",
    "williams": "williams_r",
    "stochastic": "stoch",
    "bollinger_bands": "bbands",
    "bollingerbands": "bbands",
}
INDICATOR_DEFAULTS: dict[str, dict[str, float]] = {
    "sma": {"period": 20},
    "ema": {"period": 20},
    "rsi": {"period": 14},
    "macd": {"fast_period": 12, "slow_period": 26, "signal_period": 9},
    "bbands": {"period": 20, "std_dev": 2.0},
    "atr": {"period": 14},
    "stoch": {"k_period": 14, "d_period": 3, "smooth_k": 1},
    "adx": {"period": 14},
    "roc": {"period": 10},
    "momentum": {"period": 10},
    "williams_r": {"period": 14},
    "cci": {"period": 20},
    "mfi": {"period": 14},
    "obv": {},
}
PRICE_SOURCES = ("open", "high", "low", "close")
FUZZY_TYPES = {"triangular": 3, "trapezoidal": 4, "gaussian": 2}
MODEL_TYPES = ("mlp", "lstm", "gru", "transformer")
ACTIVATIONS = ("relu", "tanh", "gelu", "leaky_relu", "sigmoid", "silu", "elu")
OPTIMIZERS = ("adam", "adamw", "sgd", "muon")
SCHEDULERS = ("none", "cosine", "onecycle", "plateau")
PRECISIONS = ("auto", "off", "bf16", "fp16")
LABEL_SOURCES = ("zigzag", "forward_return")
_TIMEFRAME = re.compile(r"^\d+(m|min|h|d|w)$", re.IGNORECASE)
_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")

# Keys KTRDR strategy files carry that this engine does not read. Anything else
# unknown is either a likely misspelling (rejected) or ignored with the warning.
_IGNORED_TOP_LEVEL = frozenset(
    {
        "description",
        "version",
        "hypothesis",
        "scope",
        "deployment",
        "decisions",
        "nn_inputs",
        "orchestrator",
        "risk_management",
        "backtesting",
        "metadata",
        "author",
        "created",
        "tags",
    }
)


# Descriptions a strategy carries for people (and KTRDR's `mode` labels, which the
# lists themselves make redundant): accepted everywhere without a warning.
_DESCRIPTIVE_KEYS = frozenset(
    {"description", "version", "hypothesis", "author", "created", "tags", "metadata", "mode"}
)


@dataclass(frozen=True, slots=True)
class IndicatorSpec:
    """One indicator: its type (``rsi``), parameters, price source and feature id."""

    feature_id: str
    type: str
    params: Mapping[str, float]
    source: str = "close"


@dataclass(frozen=True, slots=True)
class FuzzySetSpec:
    """A membership function over one indicator's main output."""

    name: str
    type: str
    parameters: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    lookback_periods: int = 1
    include_price_context: bool = False
    scale_features: bool = True


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Network shape. ``hidden_layers`` sizes the MLP, and the recurrent/attention width."""

    type: str = "mlp"
    hidden_layers: tuple[int, ...] = (64, 32)
    activation: str = "relu"
    dropout: float = 0.2
    num_layers: int = 1
    num_heads: int = 4


@dataclass(frozen=True, slots=True)
class EarlyStoppingConfig:
    enabled: bool = True
    patience: int = 10
    min_delta: float = 0.0


@dataclass(frozen=True, slots=True)
class TrainingSettings:
    """``model.training`` in the strategy file; also what service ``config`` overrides."""

    learning_rate: float = 1e-3
    batch_size: int = 32
    epochs: int = 20
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9
    scheduler: str = "none"
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    gradient_clip: float | None = 1.0
    gradient_accumulation_steps: int = 1
    mixed_precision: str = "auto"
    seed: int = 42
    deterministic: bool = False
    compile: bool = False
    device: str = "auto"


@dataclass(frozen=True, slots=True)
class LabelConfig:
    """How each bar gets its BUY(0)/HOLD(1)/SELL(2) class."""

    source: str = "zigzag"
    zigzag_threshold: float = 0.03
    label_lookahead: int = 20
    horizon: int = 5
    threshold: float = 0.01

    @property
    def lookahead(self) -> int:
        """How many future bars a label may look at (the split gap must be at least this)."""
        return self.label_lookahead if self.source == "zigzag" else self.horizon


@dataclass(frozen=True, slots=True)
class DataSplit:
    train: float = 0.6
    validation: float = 0.2
    test: float = 0.2


@dataclass(frozen=True, slots=True)
class StrategyConfig:
    """Everything the engine reads from a strategy file, validated."""

    name: str
    symbols: tuple[str, ...]
    timeframes: tuple[str, ...]
    base_timeframe: str
    indicators: tuple[IndicatorSpec, ...]
    fuzzy_sets: Mapping[str, tuple[FuzzySetSpec, ...]]
    model: ModelConfig
    features: FeatureConfig
    training: TrainingSettings
    labels: LabelConfig
    data_split: DataSplit
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    ignored_keys: tuple[str, ...] = ()


# ---------------------------------------------------------------- value checks


def _fail(key: str, problem: str) -> StrategyConfigError:
    return StrategyConfigError(key, problem)


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(key, f"expected a mapping, got {type(value).__name__}")
    return value


def _int(value: Any, key: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise _fail(key, f"expected an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise _fail(key, f"expected an integer >= {minimum}, got {value!r}")
    return int(value)


def _float(value: Any, key: str, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(key, f"expected a number, got {value!r}")
    number = float(value)
    if (
        number != number
        or (low is not None and number < low)
        or (high is not None and number > high)
    ):
        bounds = f" in [{low}, {high}]" if high is not None else f" >= {low}"
        raise _fail(key, f"expected a number{bounds}, got {value!r}")
    return number


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(key, f"expected true or false, got {value!r}")
    return value


def _choice(value: Any, key: str, choices: tuple[str, ...]) -> str:
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text not in choices:
        raise _fail(key, f"expected one of {', '.join(choices)}, got {value!r}")
    return text


def _positive_float(value: Any, key: str) -> float:
    number = _float(value, key, low=0.0)
    if number <= 0:
        raise _fail(key, f"expected a number > 0, got {value!r}")
    return number


def validate_symbol(value: Any, key: str = "symbol") -> str:
    """A ticker that is safe to put in a file name (letters, digits, ``.``, ``_``, ``-``)."""
    if not isinstance(value, str) or not _SYMBOL.match(value):
        raise _fail(key, f"expected a symbol of letters, digits, '.', '_' or '-', got {value!r}")
    return value


def validate_timeframe(value: Any, key: str = "timeframe") -> str:
    """A timeframe like ``5m``, ``1h``, ``1d``, ``1w``."""
    if not isinstance(value, str) or not _TIMEFRAME.match(value.strip()):
        raise _fail(key, f"expected a timeframe like 5m, 1h, 4h, 1d, got {value!r}")
    return value.strip()


def _check_keys(
    section: Mapping[str, Any],
    path: str,
    used: frozenset[str] | set[str],
    ignored: list[str],
    known_unused: frozenset[str] = frozenset(),
) -> None:
    """Reject likely misspellings of ``used`` keys; collect the rest as ignored."""
    for key in section:
        if key in used or key in _DESCRIPTIVE_KEYS:
            continue
        dotted = f"{path}.{key}" if path else str(key)
        if key not in known_unused:
            close = difflib.get_close_matches(str(key), sorted(used), n=1, cutoff=0.8)
            if close:
                raise _fail(dotted, f"unknown key; did you mean '{close[0]}'?")
        ignored.append(dotted)


# ---------------------------------------------------------------- sections


def _parse_symbols(data: Any, key: str) -> tuple[str, ...]:
    if isinstance(data, list | tuple):
        items = list(data)
    else:
        section = _mapping(data, key)
        if "list" in section:
            items = section["list"]
            if not isinstance(items, list):
                raise _fail(f"{key}.list", "expected a list")
        elif "symbol" in section:
            items = [section["symbol"]]
        else:
            items = []
    return tuple(validate_symbol(s, f"{key}[{i}]") for i, s in enumerate(items))


def _parse_training_data(
    data: Any, ignored: list[str]
) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    section = _mapping(data, "training_data")
    _check_keys(
        section,
        "training_data",
        {"symbols", "timeframes"},
        ignored,
        frozenset({"history_required", "start_date", "end_date"}),
    )
    symbols = _parse_symbols(section.get("symbols"), "training_data.symbols")
    if isinstance(section.get("symbols"), Mapping):
        _check_keys(
            section["symbols"],
            "training_data.symbols",
            {"list", "symbol"},
            ignored,
            frozenset({"mode"}),
        )
    tf_raw = section.get("timeframes")
    base: str | None = None
    if isinstance(tf_raw, list | tuple):
        tf_items: list[Any] = list(tf_raw)
    else:
        tf_section = _mapping(tf_raw, "training_data.timeframes")
        _check_keys(
            tf_section,
            "training_data.timeframes",
            {"list", "timeframe", "base_timeframe"},
            ignored,
            frozenset({"mode"}),
        )
        tf_items = tf_section.get("list") or (
            [tf_section["timeframe"]] if "timeframe" in tf_section else []
        )
        if not isinstance(tf_items, list):
            raise _fail("training_data.timeframes.list", "expected a list")
        if "base_timeframe" in tf_section:
            base = validate_timeframe(
                tf_section["base_timeframe"], "training_data.timeframes.base_timeframe"
            )
    timeframes = tuple(
        validate_timeframe(t, f"training_data.timeframes.list[{i}]") for i, t in enumerate(tf_items)
    )
    if not timeframes:
        timeframes = (base or "1h",)
    if base is None:
        base = timeframes[0]
    if base not in timeframes:
        raise _fail(
            "training_data.timeframes.base_timeframe",
            f"'{base}' is not in the timeframes list {list(timeframes)}",
        )
    return symbols, timeframes, base


# Parameter names KTRDR files also use for the same thing.
PARAMETER_ALIASES = {"multiplier": "std_dev", "num_std": "std_dev"}
# Optional parameters left out of a derived feature id while they keep their default.
_ID_OMITTED_DEFAULTS = {"smooth_k": 1}


def _feature_id(kind: str, params: Mapping[str, float]) -> str:
    parts = [kind] + [
        f"{params[p]:g}"
        for p in SUPPORTED_INDICATORS[kind]
        if p in params and _ID_OMITTED_DEFAULTS.get(p) != params[p]
    ]
    return "_".join(parts)


def _parse_indicator(
    entry: Any, key: str, explicit_id: str | None, ignored: list[str]
) -> IndicatorSpec:
    spec = _mapping(entry, key)
    type_key = "type" if explicit_id is not None and "type" in spec else "name"
    if type_key not in spec:
        raise _fail(key, f"missing '{type_key}' (the indicator type)")
    raw_type = spec[type_key]
    kind = str(raw_type).strip().lower()
    kind = INDICATOR_ALIASES.get(kind, kind)
    if kind not in SUPPORTED_INDICATORS:
        raise _fail(
            f"{key}.{type_key}",
            f"unsupported indicator {raw_type!r}; supported: {', '.join(SUPPORTED_INDICATORS)}",
        )
    allowed = set(SUPPORTED_INDICATORS[kind])
    params: dict[str, float] = dict(INDICATOR_DEFAULTS[kind])
    source = "close"
    for key_name, value in spec.items():
        if key_name in (type_key, "feature_id", "name", "type"):
            continue
        name = PARAMETER_ALIASES.get(key_name, key_name) if kind == "bbands" else key_name
        if name == "source":
            source = _choice(value, f"{key}.source", PRICE_SOURCES)
        elif name in allowed:
            if name == "std_dev":
                params[name] = _positive_float(value, f"{key}.{name}")
            else:
                params[name] = _int(value, f"{key}.{name}", minimum=1)
        else:
            close = difflib.get_close_matches(
                str(name), sorted(allowed | {"source"}), n=1, cutoff=0.75
            )
            if close:
                raise _fail(
                    f"{key}.{name}", f"unknown parameter for {kind}; did you mean '{close[0]}'?"
                )
            ignored.append(f"{key}.{name}")
    if kind == "macd" and params["fast_period"] >= params["slow_period"]:
        raise _fail(f"{key}.fast_period", "must be smaller than slow_period")
    feature_id = explicit_id or (
        str(spec["feature_id"]) if "feature_id" in spec else _feature_id(kind, params)
    )
    return IndicatorSpec(feature_id=feature_id, type=kind, params=params, source=source)


def _parse_indicators(data: Any, ignored: list[str]) -> tuple[IndicatorSpec, ...]:
    if data is None:
        raise _fail("indicators", "at least one indicator is required")
    specs: list[IndicatorSpec] = []
    if isinstance(data, list):
        specs = [_parse_indicator(e, f"indicators[{i}]", None, ignored) for i, e in enumerate(data)]
    elif isinstance(data, Mapping):
        specs = [_parse_indicator(e, f"indicators.{k}", str(k), ignored) for k, e in data.items()]
    else:
        raise _fail("indicators", "expected a list of {name, <params>, source}")
    if not specs:
        raise _fail("indicators", "at least one indicator is required")
    seen: set[str] = set()
    for spec in specs:
        if spec.feature_id in seen:
            raise _fail(
                "indicators",
                f"two indicators share the feature id '{spec.feature_id}'; give one a feature_id",
            )
        seen.add(spec.feature_id)
    return tuple(specs)


def _resolve_fuzzy_target(key: str, indicators: tuple[IndicatorSpec, ...]) -> str:
    ids = {i.feature_id for i in indicators}
    if key in ids:
        return key
    normalised = INDICATOR_ALIASES.get(key.split("_")[0], key.split("_")[0])
    candidates = [
        i.feature_id
        for i in indicators
        if i.type == normalised or i.feature_id.split("_")[0] == key
    ]
    if len(candidates) == 1:
        return candidates[0]
    # KTRDR names stochastic sets stochastic_14_3_3: match on the leading parameters.
    for spec in indicators:
        rest = key.split("_")[1:]
        own = spec.feature_id.split("_")[1:]
        if spec.type == normalised and rest[: len(own)] == own:
            return spec.feature_id
    raise _fail(f"fuzzy_sets.{key}", f"no indicator with this id; indicators are {sorted(ids)}")


def _parse_fuzzy_sets(
    data: Any, indicators: tuple[IndicatorSpec, ...], ignored: list[str]
) -> dict[str, tuple[FuzzySetSpec, ...]]:
    result: dict[str, tuple[FuzzySetSpec, ...]] = {}
    for ind_key, sets in _mapping(data, "fuzzy_sets").items():
        path = f"fuzzy_sets.{ind_key}"
        group = _mapping(sets, path)
        # KTRDR v3 names a group freely and points it at an indicator with `indicator:`;
        # older files key the group by the indicator itself.
        reference = group.get("indicator", ind_key)
        if not isinstance(reference, str) or not reference:
            raise _fail(f"{path}.indicator", f"expected an indicator id, got {reference!r}")
        if "." in reference:
            raise _fail(
                f"{path}.indicator",
                f"fuzzy sets read an indicator's main output; '{reference}' names another "
                "output, which this engine does not support",
            )
        target = _resolve_fuzzy_target(reference, indicators)
        # Sets of a group named apart from its indicator keep the group's name in theirs.
        prefix = "" if str(ind_key) in (target, reference) else f"{ind_key}_"
        parsed: list[FuzzySetSpec] = list(result.get(target, ()))
        for set_name, set_spec in group.items():
            if set_name == "indicator":
                continue
            set_path = f"{path}.{set_name}"
            body = _mapping(set_spec, set_path)
            _check_keys(body, set_path, {"type", "parameters"}, ignored)
            kind = _choice(body.get("type", "triangular"), f"{set_path}.type", tuple(FUZZY_TYPES))
            params = body.get("parameters")
            if not isinstance(params, list) or len(params) != FUZZY_TYPES[kind]:
                raise _fail(
                    f"{set_path}.parameters",
                    f"a {kind} set takes {FUZZY_TYPES[kind]} numbers, got {params!r}",
                )
            numbers = tuple(_float(p, f"{set_path}.parameters") for p in params)
            if kind != "gaussian" and list(numbers) != sorted(numbers):
                raise _fail(
                    f"{set_path}.parameters", f"must be in increasing order, got {list(numbers)}"
                )
            if kind == "gaussian" and numbers[1] <= 0:
                raise _fail(f"{set_path}.parameters", "gaussian takes [mean, sigma] with sigma > 0")
            parsed.append(FuzzySetSpec(name=f"{prefix}{set_name}", type=kind, parameters=numbers))
        result[target] = tuple(parsed)
    return result


def _parse_model(
    data: Any, ignored: list[str]
) -> tuple[ModelConfig, FeatureConfig, TrainingSettings]:
    section = _mapping(data, "model")
    _check_keys(
        section,
        "model",
        {"type", "architecture", "features", "training"},
        ignored,
        frozenset({"name", "version"}),
    )
    kind = _choice(section.get("type", "mlp"), "model.type", MODEL_TYPES)
    arch = _mapping(section.get("architecture"), "model.architecture")
    _check_keys(
        arch,
        "model.architecture",
        {"hidden_layers", "activation", "dropout", "num_layers", "num_heads"},
        ignored,
        frozenset({"output_activation"}),
    )
    hidden = arch.get("hidden_layers", [64, 32])
    if isinstance(hidden, int) and not isinstance(hidden, bool):
        hidden = [hidden]
    if not isinstance(hidden, list) or not hidden:
        raise _fail(
            "model.architecture.hidden_layers",
            f"expected a non-empty list of layer sizes, got {hidden!r}",
        )
    model = ModelConfig(
        type=kind,
        hidden_layers=tuple(
            _int(h, f"model.architecture.hidden_layers[{i}]") for i, h in enumerate(hidden)
        ),
        activation=_choice(
            arch.get("activation", "relu"), "model.architecture.activation", ACTIVATIONS
        ),
        dropout=_float(arch.get("dropout", 0.2), "model.architecture.dropout", 0.0, 0.95),
        num_layers=_int(arch.get("num_layers", 1), "model.architecture.num_layers"),
        num_heads=_int(arch.get("num_heads", 4), "model.architecture.num_heads"),
    )
    feats = _mapping(section.get("features"), "model.features")
    _check_keys(
        feats,
        "model.features",
        {"lookback_periods", "include_price_context", "scale_features"},
        ignored,
    )
    features = FeatureConfig(
        lookback_periods=_int(feats.get("lookback_periods", 1), "model.features.lookback_periods"),
        include_price_context=_bool(
            feats.get("include_price_context", False), "model.features.include_price_context"
        ),
        scale_features=_bool(feats.get("scale_features", True), "model.features.scale_features"),
    )
    training = parse_training_settings(section.get("training"), "model.training", ignored)
    return model, features, training


def _device_name(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(key, f"expected a device name (auto, cpu, cuda, cuda:N, mps), got {value!r}")
    return value.strip().lower()


_TRAINING_PARSERS: dict[str, Callable[[Any, str], Any]] = {
    "learning_rate": _positive_float,
    "batch_size": lambda v, k: _int(v, k),
    "epochs": lambda v, k: _int(v, k),
    "optimizer": lambda v, k: _choice(v, k, OPTIMIZERS),
    "weight_decay": lambda v, k: _float(v, k, low=0.0),
    "momentum": lambda v, k: _float(v, k, 0.0, 1.0),
    "scheduler": lambda v, k: _choice(v if v is not None else "none", k, SCHEDULERS),
    "gradient_clip": lambda v, k: None if v in (None, 0) else _positive_float(v, k),
    "gradient_accumulation_steps": lambda v, k: _int(v, k),
    "mixed_precision": lambda v, k: _choice(
        "off" if v is False else "auto" if v is True else v, k, PRECISIONS
    ),
    "seed": lambda v, k: _int(v, k, minimum=0),
    "deterministic": _bool,
    "compile": _bool,
    "device": lambda v, k: _device_name(v, k),
}


def parse_training_settings(
    data: Any,
    path: str = "model.training",
    ignored: list[str] | None = None,
    base: TrainingSettings | None = None,
    strict: bool = False,
) -> TrainingSettings:
    """Validate ``model.training`` (or a service's ``config`` overrides) onto ``base``.

    With ``strict``, any unknown key is an error (overrides sent by a client).
    """
    section = _mapping(data, path)
    sink: list[str] = [] if ignored is None else ignored
    known = set(_TRAINING_PARSERS) | {"early_stopping"}
    if strict:
        for key in section:
            if key not in known:
                raise _fail(
                    f"{path}.{key}", f"unknown setting; expected one of {', '.join(sorted(known))}"
                )
    _check_keys(section, path, known, sink)
    values: dict[str, Any] = {}
    for key, parser in _TRAINING_PARSERS.items():
        if key in section:
            values[key] = parser(section[key], f"{path}.{key}")
    settings = replace(base or TrainingSettings(), **values)
    if "early_stopping" in section:
        es_raw = section["early_stopping"]
        if isinstance(es_raw, bool):
            es_raw = {"enabled": es_raw}
        es = _mapping(es_raw, f"{path}.early_stopping")
        _check_keys(
            es,
            f"{path}.early_stopping",
            {"enabled", "patience", "min_delta"},
            sink,
            frozenset({"monitor"}),
        )
        current = settings.early_stopping
        settings = replace(
            settings,
            early_stopping=EarlyStoppingConfig(
                enabled=_bool(es.get("enabled", current.enabled), f"{path}.early_stopping.enabled"),
                patience=_int(
                    es.get("patience", current.patience), f"{path}.early_stopping.patience"
                ),
                min_delta=_float(
                    es.get("min_delta", current.min_delta),
                    f"{path}.early_stopping.min_delta",
                    low=0.0,
                ),
            ),
        )
    return settings


def _parse_training(data: Any, ignored: list[str]) -> tuple[LabelConfig, DataSplit]:
    section = _mapping(data, "training")
    _check_keys(section, "training", {"labels", "data_split"}, ignored, frozenset({"method"}))
    labels_raw = _mapping(section.get("labels"), "training.labels")
    source = _choice(labels_raw.get("source", "zigzag"), "training.labels.source", LABEL_SOURCES)
    used = (
        {"source", "zigzag_threshold", "label_lookahead"}
        if source == "zigzag"
        else {"source", "horizon", "threshold"}
    )
    _check_keys(labels_raw, "training.labels", used, ignored)
    defaults = LabelConfig()
    labels = LabelConfig(
        source=source,
        zigzag_threshold=_float(
            labels_raw.get("zigzag_threshold", defaults.zigzag_threshold),
            "training.labels.zigzag_threshold",
            1e-6,
            1.0,
        ),
        label_lookahead=_int(
            labels_raw.get("label_lookahead", defaults.label_lookahead),
            "training.labels.label_lookahead",
        ),
        horizon=_int(labels_raw.get("horizon", defaults.horizon), "training.labels.horizon"),
        threshold=_float(
            labels_raw.get("threshold", defaults.threshold), "training.labels.threshold", 0.0, 1.0
        ),
    )
    split_raw = _mapping(section.get("data_split"), "training.data_split")
    _check_keys(split_raw, "training.data_split", {"train", "validation", "test"}, ignored)
    split = DataSplit(
        train=_float(split_raw.get("train", 0.6), "training.data_split.train", 0.0, 1.0),
        validation=_float(
            split_raw.get("validation", 0.2), "training.data_split.validation", 0.0, 1.0
        ),
        test=_float(split_raw.get("test", 0.2), "training.data_split.test", 0.0, 1.0),
    )
    total = split.train + split.validation + split.test
    if abs(total - 1.0) > 1e-6 or split.train <= 0 or split.validation <= 0 or split.test <= 0:
        raise _fail(
            "training.data_split",
            f"train, validation and test must each be > 0 and sum to 1, got {total:g}",
        )
    return labels, split


# ---------------------------------------------------------------- public API


def parse_strategy(data: Mapping[str, Any], default_name: str = "strategy") -> StrategyConfig:
    """Validate a strategy already loaded as a mapping (an inline object in a request).

    Raises:
        StrategyConfigError: naming the first offending key.
    """
    if not isinstance(data, Mapping):
        raise _fail(
            "<root>", f"expected a mapping at the top of the strategy, got {type(data).__name__}"
        )
    ignored: list[str] = []
    _check_keys(
        data,
        "",
        {"name", "training_data", "indicators", "fuzzy_sets", "model", "training"},
        ignored,
        _IGNORED_TOP_LEVEL,
    )
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise _fail("name", f"expected a non-empty string, got {name!r}")
    symbols, timeframes, base = _parse_training_data(data.get("training_data"), ignored)
    indicators = _parse_indicators(data.get("indicators"), ignored)
    fuzzy = _parse_fuzzy_sets(data.get("fuzzy_sets"), indicators, ignored)
    model, features, training = _parse_model(data.get("model"), ignored)
    labels, split = _parse_training(data.get("training"), ignored)
    if ignored:
        logger.warning(
            "strategy '%s': ignoring keys the engine does not use: %s", name, ", ".join(ignored)
        )
    return StrategyConfig(
        name=name.strip(),
        symbols=symbols,
        timeframes=timeframes,
        base_timeframe=base,
        indicators=indicators,
        fuzzy_sets=fuzzy,
        model=model,
        features=features,
        training=training,
        labels=labels,
        data_split=split,
        raw=dict(data),
        ignored_keys=tuple(ignored),
    )


def load_strategy(source: str | Path | Mapping[str, Any]) -> StrategyConfig:
    """Load and validate a strategy from a YAML file or an already-parsed mapping.

    Raises:
        StrategyConfigError: the file is missing, is not YAML, or fails validation.
    """
    if isinstance(source, Mapping):
        return parse_strategy(source)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise _fail("<file>", f"strategy file not found: {path}") from exc
    except OSError as exc:
        raise _fail("<file>", f"cannot read strategy file {path}: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _fail("<file>", f"{path} is not valid YAML: {exc}") from exc
    return parse_strategy(data or {}, default_name=path.stem)


def with_overrides(
    strategy: StrategyConfig,
    *,
    training: Mapping[str, Any] | None = None,
    symbols: list[str] | tuple[str, ...] | None = None,
    timeframes: list[str] | tuple[str, ...] | None = None,
) -> StrategyConfig:
    """Return a copy with training settings, symbols or timeframes replaced.

    ``training`` takes the keys of ``model.training`` (epochs, batch_size,
    learning_rate, device, seed, ...), validated like the file's own.
    """
    updated = strategy
    if training:
        updated = replace(
            updated,
            training=parse_training_settings(
                training, "config", None, base=strategy.training, strict=True
            ),
        )
    if symbols is not None:
        checked = tuple(validate_symbol(s, f"symbols[{i}]") for i, s in enumerate(symbols))
        if not checked:
            raise _fail("symbols", "at least one symbol is required")
        updated = replace(updated, symbols=checked)
    if timeframes is not None:
        checked_tf = tuple(
            validate_timeframe(t, f"timeframes[{i}]") for i, t in enumerate(timeframes)
        )
        if not checked_tf:
            raise _fail("timeframes", "at least one timeframe is required")
        base = updated.base_timeframe if updated.base_timeframe in checked_tf else checked_tf[0]
        updated = replace(updated, timeframes=checked_tf, base_timeframe=base)
    return updated


def strategy_to_dict(strategy: StrategyConfig) -> dict[str, Any]:
    """A plain, YAML/JSON-safe dict of the validated config (saved with model artifacts)."""

    def convert(value: Any) -> Any:
        if hasattr(value, "__dataclass_fields__"):
            return {
                f.name: convert(getattr(value, f.name)) for f in fields(value) if f.name != "raw"
            }
        if isinstance(value, Mapping):
            return {str(k): convert(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [convert(v) for v in value]
        return value

    result: dict[str, Any] = convert(strategy)
    return result
