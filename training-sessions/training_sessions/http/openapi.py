"""Each service's OpenAPI document states what it accepts, beyond what its models say.

Two rules live outside the request models and are written into the document here:

* its ceilings: the strategy models bound each size far above any machine and name the
  ceiling that applies (``x-ceiling``, ``training_engine.ceilings``); the service's
  configured ceilings become the maxima;
* text it can store: no NUL character in any string or key of a request body
  (``contract.find_unstorable_value``); free-form values (extra keys a strategy may carry)
  are documented as :data:`JSON_VALUE`, any JSON value without one.

So a request the document admits is one the service takes, but for what depends on data
(a data file, a strategy file, the machine's devices) or on how values relate (a fuzzy
set naming an indicator): docs/host-service.md lists those rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from training_engine.ceilings import CEILING_KEY, Ceilings

JSON_VALUE = "JsonValue"
JSON_VALUE_REF = {"$ref": f"#/components/schemas/{JSON_VALUE}"}
NO_NUL = {"pattern": "^[^\\x00]*$"}
_JSON_VALUE_SCHEMA: dict[str, Any] = {
    "description": "any JSON value without a NUL character in its text or keys",
    "anyOf": [
        {"type": "string", **NO_NUL},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "items": JSON_VALUE_REF},
        {"type": "object", "propertyNames": NO_NUL, "additionalProperties": JSON_VALUE_REF},
    ],
}
_REF_PREFIX = "#/components/schemas/"


def document_service_rules(app: FastAPI, ceilings: Ceilings) -> None:
    """Serve ``app``'s OpenAPI document with its ceilings and its text rule written in."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()  # kept in app.openapi_schema: changed in place below
            _bound(document, ceilings.as_dict())
            _storable_text(document)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def _bound(document: dict[str, Any], limits: dict[str, int]) -> None:
    roots = [
        *document.get("components", {}).get("schemas", {}).values(),
        *_operation_schemas(document),
    ]
    for schema in _schemas(roots):
        name = schema.get(CEILING_KEY)
        if isinstance(name, str) and name in limits:
            keyword = "maxItems" if schema.get("type") == "array" else "maximum"
            schema[keyword] = min(schema.get(keyword, limits[name]), limits[name])


def _operation_schemas(document: dict[str, Any], *, bodies_only: bool = False) -> list[Any]:
    """The schemas the operations name: request bodies (and answers and parameters)."""
    found: list[Any] = []
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            parts = [operation.get("requestBody", {})]
            if not bodies_only:
                parts += list(operation.get("responses", {}).values())
                found += [p.get("schema") for p in operation.get("parameters", [])]
            for part in parts:
                found += [media.get("schema") for media in part.get("content", {}).values()]
    return found


def _storable_text(document: dict[str, Any]) -> None:
    components: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    for schema in _reachable(_operation_schemas(document, bodies_only=True), components):
        _state_no_nul(schema)
    components[JSON_VALUE] = _JSON_VALUE_SCHEMA


def _reachable(roots: list[Any], components: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every schema in ``roots`` and in the components they refer to, each component once."""
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        for schema in _schemas([pending.pop()]):
            yield schema
            ref = schema.get("$ref")
            if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
                name = ref.removeprefix(_REF_PREFIX)
                if name not in seen and name in components:
                    seen.add(name)
                    pending.append(components[name])


def _state_no_nul(schema: dict[str, Any]) -> None:
    free = {"enum", "const", "pattern"}
    if schema.get("type") == "string" and not free & set(schema):
        schema.update(NO_NUL)
    if schema.get("type") == "object" or "properties" in schema:
        if schema.get("additionalProperties", True) is not False:
            schema.setdefault("propertyNames", NO_NUL)
        if schema.get("additionalProperties", True) is True:
            schema["additionalProperties"] = JSON_VALUE_REF
    for key in ("items", "additionalProperties"):
        if schema.get(key) == {}:
            schema[key] = JSON_VALUE_REF
    for name, value in schema.get("properties", {}).items():
        if _any_value(value):
            schema["properties"][name] = {**value, **JSON_VALUE_REF}


def _any_value(schema: Any) -> bool:
    """A schema that admits any value (pydantic's ``Any``: at most a title or description)."""
    return isinstance(schema, dict) and not set(schema) - {"title", "description", "default"}


# Where JSON Schema keeps schemas (not examples, defaults or enums: data, left alone).
_ONE = ("items", "additionalProperties", "not", "propertyNames", "contains", "if", "then", "else")
_MANY = ("anyOf", "oneOf", "allOf", "prefixItems")
_BY_NAME = ("properties", "patternProperties", "$defs")


def _schemas(roots: list[Any]) -> Iterator[dict[str, Any]]:
    """Every schema object in ``roots`` and nested in them, following schema keywords only."""
    stack = list(roots)
    while stack:
        schema = stack.pop()
        if not isinstance(schema, dict):
            continue
        yield schema
        stack += [schema.get(key) for key in _ONE]
        for key in _MANY:
            stack += schema.get(key, [])
        for key in _BY_NAME:
            stack += list(schema.get(key, {}).values())
