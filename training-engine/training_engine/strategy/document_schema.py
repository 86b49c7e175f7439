"""What the strategy document's JSON Schema says beyond its fields' types.

Some rules of a strategy are checked in code, not by a field's type: an indicator's
parameters depend on which indicator it is, a fuzzy set's count of numbers on its kind,
an ``nn_inputs`` entry takes one source of two. The schema hooks here state those rules
in the models' JSON Schema, read from the same tables the code checks against, so a
document a client writes from ``/docs`` is one the engine takes. What JSON Schema cannot
state (a fuzzy set naming an existing indicator, shares of a split summing to 1, numbers
in increasing order) stays in the descriptions and in the code.
"""

from __future__ import annotations

from typing import Any

from training_engine.strategy.names import FUZZY_TYPES
from training_engine.strategy.values import MAX_INTEGER, TIMEFRAME_PATTERN

# Parameters that take one of a few words, as the indicators compute them.
PARAMETER_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("distance_from_ma", "ma_type"): ("SMA", "EMA"),
}


def _parameter(indicator: str, name: str, default: object) -> dict[str, Any]:
    if isinstance(default, bool):
        return {"type": "boolean"}
    if isinstance(default, int):
        # (VWAP's period may also be 0: one schema per name documents the common rule.)
        return {"type": "integer", "minimum": 1, "maximum": MAX_INTEGER}
    if isinstance(default, float):
        return {"type": "number", "exclusiveMinimum": 0}
    choices = PARAMETER_CHOICES.get((indicator, name))
    return {"type": "string", "enum": list(choices)} if choices else {"type": "string"}


def indicator_entry_schema(schema: dict[str, Any]) -> None:
    """The indicator's name from KTRDR's table, and each parameter any of them takes, typed.

    One flat list keeps the schema small (a branch per indicator made generating from it
    three times slower); an indicator ignores parameters of others, unless one reads like
    a misspelling of its own.
    """
    from training_engine.strategy.indicator_table import indicator_types

    parameters: dict[str, list[dict[str, Any]]] = {}
    for key, kind in indicator_types().items():
        for name in kind.names:
            typed = _parameter(key, name, kind.defaults[name])
            if typed not in parameters.setdefault(name, []):
                parameters[name].append(typed)
    properties = schema["properties"]
    for name, types in parameters.items():
        # A name typed two ways by two indicators is documented as any JSON value.
        properties[name] = types[0] if len(types) == 1 else {}
    names = sorted(indicator_types())
    properties["name"] = {"enum": names, "description": "the indicator (a list's entries)"}
    properties["type"] = {"enum": names, "description": "the indicator (entries keyed by id)"}
    schema["required"] = ["name"]
    # KTRDR's external data sources are not supported (refused naming the key).
    properties["data_source"] = False


def fuzzy_set_schema(schema: dict[str, Any]) -> None:
    """A triangular set takes 3 numbers, a trapezoidal 4, a gaussian [mean, sigma > 0]."""
    branches = []
    for kind, count in FUZZY_TYPES.items():
        numbers: dict[str, Any] = {
            "type": "array",
            "items": {"type": "number"},
            "minItems": count,
            "maxItems": count,
        }
        if kind == "gaussian":
            numbers["prefixItems"] = [{"type": "number"}, {"type": "number", "exclusiveMinimum": 0}]
        branch: dict[str, Any] = {"properties": {"type": {"const": kind}, "parameters": numbers}}
        branch["required"] = ["parameters"] if kind == "triangular" else ["type", "parameters"]
        branches.append(branch)
    schema["oneOf"] = branches


def nn_input_schema(schema: dict[str, Any]) -> None:
    """Exactly one of ``fuzzy_set`` and ``raw_indicator``; ``timeframes``: all, or a list."""
    schema["oneOf"] = [
        {"properties": {source: {"type": "string"}}, "required": [source]}
        for source in ("fuzzy_set", "raw_indicator")
    ]
    schema["properties"]["timeframes"] = {
        "anyOf": [
            {"const": "all"},
            {"type": "array", "items": {"type": "string", "pattern": TIMEFRAME_PATTERN}},
        ],
        "default": "all",
    }
