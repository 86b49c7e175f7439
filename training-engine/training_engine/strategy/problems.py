"""Refusals: unknown keys with the nearest valid one; pydantic errors as ``StrategyConfigError``.

``validate`` is the one place a model validates user input; the first error pydantic
reports becomes a ``StrategyConfigError`` naming the dotted key
(``model.training.learnig_rate``), so callers keep mapping one error type to HTTP 422.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from training_engine.errors import StrategyConfigError
from training_engine.strategy.values import refuse

M = TypeVar("M", bound=BaseModel)

# Descriptions a strategy carries for people (and KTRDR's `mode` labels, which the
# lists themselves make redundant): accepted everywhere without a warning.
DESCRIPTIVE_KEYS = frozenset(
    {"description", "version", "hypothesis", "author", "created", "tags", "metadata", "mode"}
)
# The union tags of the two indicator forms: not keys a user wrote, left out of the path.
INDICATOR_FORMS = ("list", "by_id")


def nearest(key: str, valid: Iterable[str], cutoff: float = 0.8) -> str | None:
    """The valid key ``key`` is most likely a misspelling of, if any."""
    close = difflib.get_close_matches(key, sorted(valid), n=1, cutoff=cutoff)
    return close[0] if close else None


def refuse_misspellings(
    data: Mapping[str, Any], used: Iterable[str], known_unused: frozenset[str]
) -> None:
    """Refuse a key that looks like a misspelling of one in ``used``; others are let through."""
    used = frozenset(used)
    for key in data:
        if key in used or key in DESCRIPTIVE_KEYS or key in known_unused:
            continue
        suggestion = nearest(str(key), used)
        if suggestion is not None:
            raise refuse(f"unknown key; did you mean '{suggestion}'?", at=str(key))


def dotted(parts: Iterable[str | int], prefix: str = "") -> str:
    """``("model", "architecture", "layers", 1)`` -> ``model.architecture.layers[1]``."""
    text = prefix
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _path(error: ErrorDetails) -> list[str | int]:
    loc = list(error["loc"])
    if len(loc) > 1 and loc[0] == "indicators" and loc[1] in INDICATOR_FORMS:
        del loc[1]
    at = (error.get("ctx") or {}).get("at")
    return loc + ([at] if at else [])


def _problem(error: ErrorDetails) -> str:
    kind, value = error["type"], error.get("input")
    if kind == "strategy_value":
        return str((error.get("ctx") or {})["problem"])
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping, got {type(value).__name__}"
    if kind in ("list_type", "tuple_type"):
        return f"expected a list, got {value!r}"
    if kind == "string_type":
        return f"expected a string, got {value!r}"
    return error["msg"]


def as_config_error(exc: ValidationError, prefix: str = "") -> StrategyConfigError:
    """The first problem pydantic found, named by its dotted key under ``prefix``."""
    error = exc.errors()[0]
    return StrategyConfigError(dotted(_path(error), prefix) or "<root>", _problem(error))


def validate(model: type[M], data: Any, prefix: str = "", context: Any = None) -> M:
    """``model.model_validate(data)``, refusing with a ``StrategyConfigError``."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise as_config_error(exc, prefix) from None
