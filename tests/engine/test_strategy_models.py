"""The pydantic strategy models: public schemas with real examples, forms, keys and overrides."""

from __future__ import annotations

import logging
from typing import Any

import jsonschema
import pytest
from training_engine.errors import StrategyConfigError
from training_engine.strategy import (
    StrategyDocument,
    TrainingOverrides,
    parse_strategy,
    strategy_to_dict,
    with_overrides,
)
from training_engine.strategy.names import ACTIVATIONS, MODEL_TYPES, OPTIMIZERS, SCHEDULERS


def _checked_schema(model: type[StrategyDocument] | type[TrainingOverrides]) -> dict[str, Any]:
    schema = model.model_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def test_strategy_document_schema_is_valid_and_its_example_is_a_real_strategy() -> None:
    schema = _checked_schema(StrategyDocument)
    (example,) = schema["examples"]
    jsonschema.validate(example, schema)
    assert {"training_data", "indicators", "fuzzy_sets", "model", "training"} <= set(
        schema["properties"]
    )
    strategy = parse_strategy(example)
    assert strategy.name == example["name"] and strategy.ignored_keys == ()
    assert [i.feature_id for i in strategy.indicators] == ["rsi_14", "macd_12_26_9"]


def test_schema_lists_the_registries_names() -> None:
    schema = _checked_schema(StrategyDocument)
    defs = schema["$defs"]
    assert defs["ModelSection"]["properties"]["type"]["enum"] == list(MODEL_TYPES)
    assert defs["ArchitectureSection"]["properties"]["activation"]["enum"] == list(ACTIVATIONS)
    training = defs["TrainingSection"]["properties"]
    assert training["optimizer"]["enum"] == list(OPTIMIZERS)
    assert training["scheduler"]["enum"] == list(SCHEDULERS)


def test_training_overrides_schema_is_valid_and_its_example_applies() -> None:
    schema = _checked_schema(TrainingOverrides)
    (example,) = schema["examples"]
    jsonschema.validate(example, schema)
    assert schema["additionalProperties"] is False
    assert {"epochs", "batch_size", "learning_rate", "device", "early_stopping"} <= set(
        schema["properties"]
    )
    assert all("default" not in prop for prop in schema["properties"].values())
    strategy = with_overrides(
        parse_strategy(StrategyDocument.model_json_schema()["examples"][0]), training=example
    )
    assert strategy.training.epochs == example["epochs"]
    assert strategy.training.early_stopping.patience == example["early_stopping"]["patience"]


def _strategy(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "s",
        "indicators": [{"name": "rsi", "period": 7}, {"name": "sma", "period": 5}],
        "model": {"training": {"epochs": 3}},
    }
    data.update(changes)
    return data


def test_list_and_v3_dict_indicators_give_the_same_config() -> None:
    listed = parse_strategy(_strategy())
    keyed = parse_strategy(
        _strategy(indicators={"rsi_7": {"type": "rsi", "period": 7}, "sma_5": {"name": "sma"}})
    )
    assert [i.feature_id for i in keyed.indicators] == ["rsi_7", "sma_5"]
    assert keyed.indicators[0] == listed.indicators[0]
    assert keyed.indicators[1].params == {"period": 20}


def test_unknown_top_level_keys_are_ignored_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="training_engine.strategy"):
        strategy = parse_strategy(_strategy(deployment={"x": 1}, orchestrator={}, cosmetics=2))
    assert strategy.ignored_keys == ("deployment", "orchestrator", "cosmetics")
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "deployment, orchestrator, cosmetics" in record.getMessage()


@pytest.mark.parametrize(
    ("path", "key", "nearest"),
    [
        (("model", "training"), "learnig_rate", "learning_rate"),
        (("model", "training", "early_stopping"), "patiense", "patience"),
        (("training", "data_split"), "validaton", "validation"),
        ((), "fuzzy_set", "fuzzy_sets"),
    ],
)
def test_misspelt_key_is_named_with_the_nearest_valid_key(
    path: tuple[str, ...], key: str, nearest: str
) -> None:
    data = _strategy()
    section = data
    for part in path:
        section = section.setdefault(part, {})
    section[key] = 1
    with pytest.raises(StrategyConfigError) as caught:
        parse_strategy(data)
    assert caught.value.key == ".".join((*path, key))
    assert f"did you mean '{nearest}'" in caught.value.problem


def test_overrides_are_validated_by_the_same_models_and_strictly() -> None:
    base = parse_strategy(_strategy(model={"training": {"early_stopping": {"enabled": False}}}))
    merged = with_overrides(base, training={"early_stopping": {"patience": 4}, "epochs": 2.0})
    assert merged.training.early_stopping.enabled is False
    assert merged.training.early_stopping.patience == 4 and merged.training.epochs == 2
    assert base.training.epochs == 20  # the original is unchanged
    for bad, key in [
        ({"learnig_rate": 0.1}, "config.learnig_rate"),
        ({"optimizer": "adagrad"}, "config.optimizer"),
        ({"early_stopping": {"patiense": 3}}, "config.early_stopping.patiense"),
    ]:
        with pytest.raises(StrategyConfigError) as caught:
            with_overrides(base, training=bad)
        assert caught.value.key == key


def test_config_is_immutable_and_round_trips_through_its_dict() -> None:
    strategy = parse_strategy(_strategy())
    with pytest.raises(ValueError, match="frozen"):
        strategy.training.epochs = 5  # type: ignore[misc]
    rebuilt = type(strategy).model_validate({**strategy_to_dict(strategy), "raw": strategy.raw})
    assert rebuilt == strategy
