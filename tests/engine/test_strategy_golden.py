"""Golden test: every known strategy parses to the configuration the first parser produced.

The fixture (``golden/strategies.json``) was written by the hand-written parser before the
pydantic models replaced it: same values, same key order, same refusals with the same words.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from training_engine.errors import StrategyConfigError
from training_engine.strategy import strategy_to_dict

from tests.engine.golden.strategy_cases import ERRORS, FIXTURE, PARSED, Case

GOLDEN: dict[str, Any] = json.loads(FIXTURE.read_text())


def test_the_fixture_covers_every_case() -> None:
    assert set(GOLDEN["parsed"]) == set(PARSED)
    assert set(GOLDEN["errors"]) == set(ERRORS)


@pytest.mark.parametrize("name", sorted(PARSED))
def test_strategy_parses_to_the_golden_configuration(name: str) -> None:
    resolved = strategy_to_dict(PARSED[name]())
    assert resolved == GOLDEN["parsed"][name]
    # Same key order too: artifacts write this dict as YAML without sorting.
    assert json.dumps(resolved) == json.dumps(GOLDEN["parsed"][name])


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_bad_strategy_is_refused_with_the_golden_key_and_message(name: str) -> None:
    case: Case = ERRORS[name]
    with pytest.raises(StrategyConfigError) as caught:
        case()
    assert {"key": caught.value.key, "problem": caught.value.problem} == GOLDEN["errors"][name]
