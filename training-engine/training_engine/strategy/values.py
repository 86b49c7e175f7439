"""The value types of a strategy, each refusing bad input in the words users already know.

Every type is an ``Annotated`` alias: a before-validator that checks the value the way the
engine always has (``2.0`` is an integer, ``true`` is not a number) and a ``Field`` that
documents the same bounds in the JSON Schema. A refusal is a ``PydanticCustomError`` of type
``strategy_value`` whose ``problem`` becomes ``StrategyConfigError.problem``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Annotated, Any

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

from training_engine.ceilings import (
    CEILING_KEY,
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    MAX_LAYER_COUNT,
    MAX_LAYER_WIDTH,
    MAX_LOOKBACK,
)
from training_engine.errors import StrategyConfigError

_TIMEFRAME = re.compile(r"^\d+(m|min|h|d|w)$", re.IGNORECASE)
_MONTHS = re.compile(r"^\d+M$")  # KTRDR's 1M is a month; 1m (any other case) a minute
# Timeframes as JSON Schema documents them (the checks above also take spaces around,
# leading zeros and any number of digits).
TIMEFRAME_PATTERN = r"^[1-9][0-9]{0,3}([mM]|[mM][iI][nN]|[hH]|[dD]|[wW])$"
# Dates as JSON Schema documents them: pandas' timestamps span the years 1677 to 2262.
DATE_PATTERN = r"^(1[7-9]|2[01])[0-9]{2}-[0-9]{2}-[0-9]{2}$"
DATE_SCHEMA = {"format": "date", "pattern": DATE_PATTERN}
# The one rule for every name that becomes part of a path: symbols, strategy names; the
# same text is the JSON Schema pattern (whole-text matched here, as ECMA's $ means).
SAFE_NAME_PATTERN = r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_SAFE_NAME = re.compile(SAFE_NAME_PATTERN)
# What the engine can train on; resolve_device checks the device exists.
DEVICE_NAME = re.compile(r"^(auto|cpu|mps|cuda(:\d{1,4})?)$")
# The largest integer a strategy may hold: it must fit every database's INTEGER column.
MAX_INTEGER = 2**31 - 1
# Sizes are bounded by ``training_engine.ceilings``' MAX_* here; a service's own ceilings
# (configurable, lower) are checked before a session starts. Each bounded field names its
# ceiling in its JSON Schema (``x-ceiling``), so a service documents its own value there.


def refuse(problem: str, at: str | None = None) -> PydanticCustomError:
    """A validation error carrying the user-facing problem; ``at`` names a key below its place."""
    context: dict[str, str] = {"problem": problem}
    if at is not None:
        context["at"] = at
    return PydanticCustomError("strategy_value", "{problem}", context)


def _integer(minimum: int, maximum: int = MAX_INTEGER) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (isinstance(value, float) and not math.isfinite(value))
            or int(value) != value
            or value < minimum
        ):
            raise refuse(f"expected an integer >= {minimum}, got {value!r}")
        if value > maximum:
            raise refuse(f"expected an integer <= {maximum}, got {value!r}")
        return int(value)

    return check


def _ceiling(name: str, maximum: int) -> Any:
    """The schema of a count bounded by ``maximum``, below the service ceiling ``name``."""
    return Field(ge=1, le=maximum, json_schema_extra={CEILING_KEY: name})


def _number(low: float | None = None, high: float | None = None) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise refuse(f"expected a number, got {value!r}")
        try:
            number = float(value)
        except OverflowError:  # an integer beyond any float
            number = math.inf
        if not math.isfinite(number):
            raise refuse(f"expected a finite number, got {value!r}")
        if (low is not None and number < low) or (high is not None and number > high):
            bounds = f" in [{low}, {high}]" if high is not None else ""
            bounds = f" >= {low}" if low is not None and high is None else bounds
            raise refuse(f"expected a number{bounds}, got {value!r}")
        return number

    return check


def as_number(value: Any, at: str | None = None) -> float:
    """A finite number (fuzzy set parameters), refused at ``at`` below the current place."""
    try:
        return _number()(value)
    except PydanticCustomError as exc:
        raise refuse(str((exc.context or {})["problem"]), at) from None


def _positive(value: Any) -> float:
    number = _number(low=0.0)(value)
    if number <= 0:
        raise refuse(f"expected a number > 0, got {value!r}")
    return number


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise refuse(f"expected true or false, got {value!r}")
    return value


def choice(names: Callable[[], Iterable[str]]) -> Callable[[Any], str]:
    """A case-insensitive name from ``names()`` (read when validating: registries load late)."""

    def check(value: Any) -> str:
        allowed = tuple(names())
        text = value.strip().lower() if isinstance(value, str) else None
        if text not in allowed:
            raise refuse(f"expected one of {', '.join(allowed)}, got {value!r}")
        return text

    return check


def enum_of(names: Callable[[], Iterable[str]]) -> Callable[[dict[str, Any]], None]:
    """Adds the allowed names to a field's JSON Schema when the schema is generated."""

    def extend(schema: dict[str, Any]) -> None:
        schema["enum"] = list(names())

    return extend


def validate_name(value: Any, key: str, what: str = "a name") -> str:
    """A name safe to use as one file or folder name: 1-64 letters, digits, ``.``, ``_``, ``-``.

    It starts with a letter or digit and holds no ``..``, so it can never leave its folder.
    """
    if not isinstance(value, str) or not _SAFE_NAME.fullmatch(value):
        raise StrategyConfigError(
            key,
            f"expected {what} of letters, digits, '.', '_' or '-', got {value!r}",
        )
    return value


def validate_symbol(value: Any, key: str = "symbol") -> str:
    """A ticker that is safe to put in a file name (the rule of :func:`validate_name`)."""
    return validate_name(value, key, "a symbol")


def validate_timeframe(value: Any, key: str = "timeframe") -> str:
    """A timeframe like ``5m``, ``1h``, ``1d``, ``1w`` or ``1M`` (a month), in lower case
    except the month's ``M``."""
    text = value.strip() if isinstance(value, str) else ""
    if _MONTHS.match(text):
        return text
    if not _TIMEFRAME.match(text):
        raise StrategyConfigError(
            key, f"expected a timeframe like 1m, 5m, 1h, 4h, 1d, 1w, 1M, got {value!r}"
        )
    return text.lower()


def timeframe_minutes(timeframe: str) -> int:
    """A bar's length in minutes, a month counted as 31 days (for ordering only)."""
    text = validate_timeframe(timeframe)
    digits = "".join(ch for ch in text if ch.isdigit())
    unit = text[len(digits) :]
    per_unit = {"m": 1, "min": 1, "h": 60, "d": 1440, "w": 10080, "M": 44640}[unit]
    return int(digits) * per_unit


def _as_value_error(check: Callable[[Any, str], str]) -> Callable[[Any], str]:
    def run(value: Any) -> str:
        try:
            return check(value, "")
        except StrategyConfigError as exc:
            raise refuse(exc.problem) from exc

    return run


def _device(value: Any) -> str:
    name = value.strip().lower() if isinstance(value, str) else None
    if name is None or not DEVICE_NAME.match(name):
        raise refuse(f"expected a device name (auto, cpu, cuda, cuda:N, mps), got {value!r}")
    return name


def _layer_sizes(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if not isinstance(value, list | tuple) or not value:
        raise refuse(f"expected a non-empty list of layer sizes, got {value!r}")
    return value


def _date_text(value: Any) -> str:
    # YAML reads 2024-01-01 as a date.
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    if not isinstance(value, str) or not value.strip():
        raise refuse(f"expected a date like 2024-01-31, got {value!r}")
    return value.strip()


Count = Annotated[int, Field(ge=1, le=MAX_INTEGER), BeforeValidator(_integer(1))]
DateText = Annotated[str, Field(json_schema_extra=DATE_SCHEMA), BeforeValidator(_date_text)]
Seed = Annotated[int, Field(ge=0, le=MAX_INTEGER), BeforeValidator(_integer(0))]
NonNegative = Annotated[float, Field(ge=0.0), BeforeValidator(_number(low=0.0))]
Fraction = Annotated[float, Field(ge=0.0, le=1.0), BeforeValidator(_number(0.0, 1.0))]


def _share(value: Any) -> float:
    number = _number(0.0, 1.0)(value)
    if number <= 0:
        raise refuse(f"expected a number in (0, 1], got {value!r}")
    return number


# A share of something that cannot be zero (a device's memory).
Share = Annotated[float, Field(gt=0.0, le=1.0), BeforeValidator(_share)]
Dropout = Annotated[float, Field(ge=0.0, le=0.95), BeforeValidator(_number(0.0, 0.95))]
ZigzagThreshold = Annotated[float, Field(ge=1e-6, le=1.0), BeforeValidator(_number(1e-6, 1.0))]
Positive = Annotated[float, Field(gt=0.0), BeforeValidator(_positive)]
Real = Annotated[float, BeforeValidator(_number())]
Flag = Annotated[bool, BeforeValidator(_flag)]
Symbol = Annotated[
    str,
    Field(json_schema_extra={"pattern": SAFE_NAME_PATTERN}),
    BeforeValidator(_as_value_error(validate_symbol)),
]
# A FRED series id or COT report code: it names a file in the data folder, like a symbol.
SourceName = Annotated[
    str,
    Field(json_schema_extra={"pattern": SAFE_NAME_PATTERN}),
    BeforeValidator(_as_value_error(lambda value, key: validate_name(value, key, "an id"))),
]
Timeframe = Annotated[
    str,
    Field(json_schema_extra={"pattern": TIMEFRAME_PATTERN}),
    BeforeValidator(_as_value_error(validate_timeframe)),
]
DeviceName = Annotated[
    str,
    Field(
        examples=["auto", "cpu", "cuda", "cuda:1", "mps"],
        json_schema_extra={"pattern": DEVICE_NAME.pattern},
    ),
    BeforeValidator(_device),
]
LayerWidth = Annotated[
    int, _ceiling("hidden_width", MAX_LAYER_WIDTH), BeforeValidator(_integer(1, MAX_LAYER_WIDTH))
]
# hidden_layers' length and num_layers (stacked recurrent or transformer layers).
LayerCount = Annotated[
    int, _ceiling("hidden_layers", MAX_LAYER_COUNT), BeforeValidator(_integer(1, MAX_LAYER_COUNT))
]
Lookback = Annotated[
    int, _ceiling("lookback", MAX_LOOKBACK), BeforeValidator(_integer(1, MAX_LOOKBACK))
]
Epochs = Annotated[int, _ceiling("epochs", MAX_EPOCHS), BeforeValidator(_integer(1, MAX_EPOCHS))]
BatchSize = Annotated[
    int, _ceiling("batch_size", MAX_BATCH_SIZE), BeforeValidator(_integer(1, MAX_BATCH_SIZE))
]
LayerSizes = Annotated[
    tuple[LayerWidth, ...],
    Field(
        min_length=1,
        max_length=MAX_LAYER_COUNT,
        json_schema_extra={CEILING_KEY: "hidden_layers"},
    ),
    BeforeValidator(_layer_sizes),
]
