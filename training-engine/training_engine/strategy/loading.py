"""The public entry points: parse or load a strategy, apply overrides, write it back out."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from training_engine.errors import StrategyConfigError
from training_engine.strategy.config import StrategyConfig, TrainingSettings
from training_engine.strategy.document import StrategyDocument, TrainingOverrides
from training_engine.strategy.problems import validate
from training_engine.strategy.resolve import resolve
from training_engine.strategy.values import validate_symbol, validate_timeframe

logger = logging.getLogger(__name__)

# What a strategy file's name ends with, in the order a name without one is looked up.
STRATEGY_FILE_SUFFIXES = (".yaml", ".yml")


def parse_strategy(data: Mapping[str, Any], default_name: str = "strategy") -> StrategyConfig:
    """Validate a strategy already loaded as a mapping (an inline object in a request).

    Raises:
        StrategyConfigError: naming the first offending key.
    """
    if not isinstance(data, Mapping):
        raise StrategyConfigError(
            "<root>", f"expected a mapping at the top of the strategy, got {type(data).__name__}"
        )
    context: dict[str, list[str]] = {}
    document = validate(StrategyDocument, data, context=context)
    strategy = resolve(document, default_name, data, context.get("symbols_unused", []))
    if strategy.ignored_keys:
        logger.warning(
            "strategy '%s': ignoring keys the engine does not use: %s",
            document.name or default_name,
            ", ".join(strategy.ignored_keys),
        )
    return strategy


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
        raise StrategyConfigError("<file>", f"strategy file not found: {path}") from exc
    except OSError as exc:
        raise StrategyConfigError("<file>", f"cannot read strategy file {path}: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise StrategyConfigError("<file>", f"{path} is not valid YAML{_where(exc)}") from exc
    return parse_strategy(data or {}, default_name=path.stem)


def _where(exc: yaml.YAMLError) -> str:
    """The problem and its line, without the excerpt of the file PyYAML quotes."""
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return ""
    mark = exc.problem_mark
    return f": {exc.problem} (line {mark.line + 1}, column {mark.column + 1})"


def override_training(base: TrainingSettings, overrides: Mapping[str, Any]) -> TrainingSettings:
    """``base`` with the keys of ``overrides`` replaced (``early_stopping`` merged key by key).

    Raises:
        StrategyConfigError: an unknown key or a bad value, named ``config.<key>``.
    """
    if not isinstance(overrides, Mapping):
        raise StrategyConfigError("config", f"expected a mapping, got {type(overrides).__name__}")
    # Only the keys given are validated; the others keep base's values as they are.
    checked = validate(TrainingOverrides, overrides, "config")
    changes = {key: getattr(checked, key) for key in overrides}
    if "early_stopping" in overrides:
        given = checked.early_stopping  # merged key by key into base's
        keys = given.model_fields_set & set(type(base.early_stopping).model_fields)
        changes["early_stopping"] = base.early_stopping.model_copy(
            update={key: getattr(given, key) for key in keys}
        )
    return base.model_copy(update=changes)


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
    changes: dict[str, Any] = {}
    if training:
        changes["training"] = override_training(strategy.training, training)
    if symbols is not None:
        checked = tuple(validate_symbol(s, f"symbols[{i}]") for i, s in enumerate(symbols))
        if not checked:
            raise StrategyConfigError("symbols", "at least one symbol is required")
        changes["symbols"] = checked
    if timeframes is not None:
        frames = tuple(validate_timeframe(t, f"timeframes[{i}]") for i, t in enumerate(timeframes))
        if not frames:
            raise StrategyConfigError("timeframes", "at least one timeframe is required")
        base = strategy.base_timeframe if strategy.base_timeframe in frames else frames[0]
        # nn_inputs entries for timeframes no longer trained on apply to all of them.
        inputs = tuple(
            entry
            if entry.timeframes is None or set(entry.timeframes) & set(frames)
            else entry.model_copy(update={"timeframes": None})
            for entry in strategy.nn_inputs
        )
        changes.update(timeframes=frames, base_timeframe=base, nn_inputs=inputs)
    return strategy.model_copy(update=changes) if changes else strategy


# Training settings added after artifacts were first written, written only when set:
# the files of runs that leave them unset stay byte for byte what they were.
_WRITTEN_WHEN_SET = ("memory_fraction",)


def strategy_to_dict(strategy: StrategyConfig) -> dict[str, Any]:
    """A plain, YAML/JSON-safe dict of the validated config (saved with model artifacts)."""
    config = strategy.model_dump(mode="json")
    for key in _WRITTEN_WHEN_SET:
        if config["training"].get(key) is None:
            config["training"].pop(key, None)
    return config


def strategy_from_dict(
    resolved: Mapping[str, Any], source: Mapping[str, Any] | None = None
) -> StrategyConfig:
    """The config :func:`strategy_to_dict` wrote, with the document it came from as ``raw``.

    A stored strategy is read back this way, never parsed from its document again: it
    equals the one stored, overrides included, whatever the strategy files say now.

    Raises:
        StrategyConfigError: ``resolved`` is not such a dict.
    """
    return validate(StrategyConfig, {**resolved, "raw": dict(source or {})}, "resolved")
