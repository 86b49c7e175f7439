"""The three bodies KTRDR posts to ``/training/start``, told apart and mapped to a request.

- era A (2025-07 to 10-11): ``{model_configuration: {strategy_config: <path>, ...}, ...}``
- era B (2025-10-12 to 11-09): ``{strategy_yaml: <file text>, symbols, timeframes, dates}``
- era C (2025-11-10 on, registered workers): era B's keys plus ``task_id`` and
  ``strategy_path``; ``task_id`` becomes the session id and the answer's ``operation_id``.

Extra keys are allowed (KTRDR sends more than is used); used values are checked strictly.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from training_engine.strategy import STRATEGY_FILE_SUFFIXES
from training_sessions.contract import (
    MAX_BODY_DEPTH,
    DateBound,
    SymbolName,
    TimeframeName,
    TrainingId,
    find_unstorable_value,
)
from training_sessions.types import TrainingRequest

from training_host.errors import InvalidParameterError, UnsafePathError

# training_configuration keys that are model.training overrides in the engine.
TRAINING_OVERRIDE_KEYS = (
    "epochs",
    "batch_size",
    "learning_rate",
    "optimizer",
    "weight_decay",
    "scheduler",
    "seed",
    "device",
    "mixed_precision",
    "early_stopping",
    "gradient_clip",
    "memory_fraction",
)
# KTRDR's own strategy folder (/app/strategies in its container, strategies/ on a host).
KTRDR_STRATEGY_FOLDER = "strategies"


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


# What strategy_name_from takes, as the document states it: a file name (a .yaml or .yml
# suffix, or none) alone, in strategies/ or in KTRDR's /app/strategies/.
STRATEGY_CONFIG_PATTERN = (
    r"^(/app/strategies/|strategies/)?[A-Za-z0-9][A-Za-z0-9_-]{0,63}(\.ya?ml)?$"
)


class KtrdrModelConfiguration(_Lenient):
    strategy_config: str = Field(
        min_length=1,
        description="strategy path or file name",
        json_schema_extra={"pattern": STRATEGY_CONFIG_PATTERN},
        examples=["/app/strategies/momentum_mlp.yaml"],
    )
    symbols: list[SymbolName] = Field(min_length=1)
    timeframes: list[TimeframeName] = Field(min_length=1)
    model_type: str | None = None
    multi_symbol: bool | None = None


class KtrdrTrainingConfiguration(_Lenient):
    validation_split: float | None = Field(default=None, gt=0.0, lt=1.0)
    start_date: DateBound | None = None
    end_date: DateBound | None = None
    data_mode: str | None = None


class KtrdrGpuConfiguration(_Lenient):
    enable_gpu: bool = True
    mixed_precision: bool | None = None
    # The share of the GPU's memory the session may allocate (honoured on CUDA and MPS).
    memory_fraction: float | None = Field(default=None, gt=0.0, le=1.0)


class EraAStartBody(_Lenient):
    """Era A: the strategy named by a path on the KTRDR backend's disk."""

    session_id: TrainingId | None = None
    model_configuration: KtrdrModelConfiguration
    training_configuration: KtrdrTrainingConfiguration = Field(
        default_factory=KtrdrTrainingConfiguration
    )
    data_configuration: dict[str, Any] = Field(default_factory=dict)
    gpu_configuration: KtrdrGpuConfiguration | None = None


class InlineStartBody(_Lenient):
    """Eras B and C: the strategy file's text inline; C adds ``task_id``."""

    strategy_yaml: str = Field(
        min_length=1,
        description="a strategy file's text (YAML), validated as a strategy document "
        "(StrategyDocument): a mapping, no aliases, at most 32 levels deep, text keys",
        json_schema_extra={"contentMediaType": "application/yaml"},
    )
    symbols: list[SymbolName] | None = None
    timeframes: list[TimeframeName] | None = None
    start_date: DateBound | None = None
    end_date: DateBound | None = None
    task_id: TrainingId | None = None
    strategy_path: str | None = None


KtrdrStartBody = EraAStartBody | InlineStartBody


def parse_start_body(body: Any) -> KtrdrStartBody:
    """Tell the eras apart by their keys and validate the body.

    Raises:
        InvalidParameterError: not a JSON object, no known form, or a bad value.
    """
    if not isinstance(body, dict):
        raise InvalidParameterError("the body must be a JSON object")
    # The checks every start body gets (NUL, lone surrogates, NaN, depth), KTRDR's included.
    found = find_unstorable_value(body)
    if found is not None:
        path, problem = found
        raise InvalidParameterError(f"{path}: {problem}")
    if "model_configuration" in body:
        model: type[EraAStartBody] | type[InlineStartBody] = EraAStartBody
    elif "strategy_yaml" in body:
        model = InlineStartBody
    else:
        raise InvalidParameterError(
            "expected either model_configuration (KTRDR until 2025-10-11) or strategy_yaml "
            "(KTRDR from 2025-10-12)"
        )
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidParameterError(problems) from exc


def strategy_name_from(strategy_config: str, strategies_dir: Path) -> str:
    """The name of the strategy file a KTRDR ``strategy_config`` path points at.

    The backend's path is not on this host (``/app/strategies/x.yaml`` in its container,
    ``strategies/x.yaml`` on a host), so the file name alone is looked up in
    ``strategies_dir``. Refused: ``..``, a suffix other than ``.yaml``/``.yml``, and an
    absolute path that is neither in ``strategies_dir`` nor in a ``strategies`` folder.
    """
    candidate = PurePosixPath(strategy_config.replace("\\", "/"))
    if ".." in candidate.parts:
        raise UnsafePathError(f"strategy_config '{strategy_config}' must not contain '..'")
    if candidate.suffix and candidate.suffix.lower() not in STRATEGY_FILE_SUFFIXES:
        raise UnsafePathError(
            f"strategy_config '{strategy_config}' must name a .yaml or .yml strategy file"
        )
    if candidate.is_absolute():
        inside = Path(str(candidate)).parent.resolve() == strategies_dir.resolve()
        if not inside and candidate.parent.name != KTRDR_STRATEGY_FOLDER:
            raise UnsafePathError(
                f"strategy_config '{strategy_config}' must name a file in the strategies "
                f"directory {strategies_dir.resolve()} or in KTRDR's /app/strategies"
            )
    return candidate.stem if candidate.suffix else candidate.name


def inline_strategy(text: str) -> dict[str, Any]:
    """Parse ``strategy_yaml`` into JSON values; the text is kept in the session, never
    written to a file.

    Raises:
        InvalidParameterError: not YAML or not a mapping; YAML aliases (which can expand
            a small text into a huge document); nesting deeper than the JSON bodies may
            go; a key that is not text; a value Python cannot build (an integer of more
            than 4300 digits, a 13th month) or the store cannot keep (NUL, NaN).
    """
    _check_structure(text)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidParameterError(f"strategy_yaml is not valid YAML: {exc}") from exc
    except ValueError as exc:
        reason = str(exc).split(";")[0]
        raise InvalidParameterError(f"strategy_yaml: a value cannot be read: {reason}") from None
    if not isinstance(document, dict):
        raise InvalidParameterError("strategy_yaml must be a YAML mapping (a strategy file)")
    strategy = _json_values(document, "")
    found = find_unstorable_value(strategy)
    if found is not None:
        path, problem = found
        raise InvalidParameterError(f"strategy_yaml: {path}: {problem}")
    return strategy


def _check_structure(text: str) -> None:
    """Refuse aliases and deep nesting from the parser's events, stopping at the first:
    PyYAML's parser slows down with depth and its loader recurses (20,000 levels of
    ``[`` took minutes, then a RecursionError)."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise InvalidParameterError("strategy_yaml must not use YAML aliases (*name)")
            if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                depth += 1
                if depth > MAX_BODY_DEPTH:
                    raise InvalidParameterError(
                        f"strategy_yaml: nested deeper than {MAX_BODY_DEPTH} levels"
                        f"{_line(event.start_mark)}"
                    )
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                depth -= 1
    except yaml.YAMLError as exc:
        raise InvalidParameterError(f"strategy_yaml is not valid YAML: {exc}") from exc


def _line(mark: Any) -> str:
    return f" (line {mark.line + 1})" if mark is not None else ""


# What YAML makes of an unquoted key that is not text, as the refusal names it.
_KEY_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "true/false"),
    (datetime, "a timestamp"),
    (date, "a date"),
    (int, "an integer"),
    (float, "a number"),
    (type(None), "empty (null)"),
)


def _json_values(value: Any, path: str) -> Any:
    """The document in JSON's types: dates as ISO text; keys must be text already."""
    if isinstance(value, dict):
        converted = {}
        for key, item in value.items():
            if not isinstance(key, str):
                kind = next((name for t, name in _KEY_KINDS if isinstance(key, t)), "not text")
                where = f"under {path}: " if path else ""
                raise InvalidParameterError(
                    f"strategy_yaml: {where}key {key} is {kind}; keys must be text "
                    f"(quote it: '{key}')"
                )
            converted[key] = _json_values(item, f"{path}.{key}" if path else key)
        return converted
    if isinstance(value, list):
        return [_json_values(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, date):  # a datetime is a date too
        return value.isoformat()
    if value is None or isinstance(value, str | int | float):
        return value
    raise InvalidParameterError(
        f"strategy_yaml: {path}: a YAML {type(value).__name__} is not a strategy value"
    )


def request_from(body: KtrdrStartBody, strategies_dir: Path) -> TrainingRequest:
    """Map a KTRDR start body of any era onto the runtime's request."""
    if isinstance(body, InlineStartBody):
        return TrainingRequest(
            strategy=inline_strategy(body.strategy_yaml),
            symbols=tuple(body.symbols) if body.symbols else None,
            timeframes=tuple(body.timeframes) if body.timeframes else None,
            start_date=body.start_date,
            end_date=body.end_date,
        )
    model = body.model_configuration
    training = body.training_configuration
    extra = training.model_extra or {}
    config: dict[str, Any] = {key: extra[key] for key in TRAINING_OVERRIDE_KEYS if key in extra}
    gpu = body.gpu_configuration
    if gpu is not None:
        if not gpu.enable_gpu:
            config["device"] = "cpu"
        if gpu.mixed_precision is not None:
            config.setdefault("mixed_precision", "auto" if gpu.mixed_precision else "off")
        if gpu.memory_fraction is not None:
            config.setdefault("memory_fraction", gpu.memory_fraction)
    return TrainingRequest(
        strategy=strategy_name_from(model.strategy_config, strategies_dir),
        symbols=tuple(model.symbols),
        timeframes=tuple(model.timeframes),
        start_date=training.start_date,
        end_date=training.end_date,
        config=config,
    )


def session_id_of(body: KtrdrStartBody) -> str | None:
    """The id the client chose: era A's ``session_id`` or era C's ``task_id``."""
    if isinstance(body, InlineStartBody):
        return body.task_id
    return body.session_id


def wants_gpu(body: KtrdrStartBody) -> bool:
    if isinstance(body, EraAStartBody) and body.gpu_configuration is not None:
        return body.gpu_configuration.enable_gpu
    return True
