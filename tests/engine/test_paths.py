"""path_inside: the one check before the engine and the services write a path."""

from __future__ import annotations

from pathlib import Path

import pytest
from training_engine.errors import StrategyConfigError, UnsafePathError
from training_engine.paths import path_inside
from training_engine.strategy import parse_strategy


def test_a_name_inside_the_folder_is_resolved(tmp_path: Path) -> None:
    assert (
        path_inside(tmp_path, "momentum", "AAPL_1h_v1")
        == tmp_path.resolve() / "momentum/AAPL_1h_v1"
    )


@pytest.mark.parametrize("name", ["../x", "/tmp/pwned", "a/../../b", ".", ""])
def test_a_name_that_leaves_the_folder_is_refused_without_naming_the_folder(
    tmp_path: Path, name: str
) -> None:
    with pytest.raises(UnsafePathError) as caught:
        path_inside(tmp_path, name, what="strategy name")
    assert "strategy name" in str(caught.value)
    assert str(tmp_path) not in str(caught.value)


def test_a_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "models"
    root.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError):
        path_inside(root, "link", "model.safetensors")


@pytest.mark.parametrize("name", ["../x", "/tmp/pwned", "a..b", ".hidden", "a b", "x" * 65])
def test_strategy_names_follow_the_symbol_rule(name: str) -> None:
    document = {"name": name, "indicators": [{"name": "rsi"}]}
    with pytest.raises(StrategyConfigError, match="name"):
        parse_strategy(document)
