"""A strategy with context data through the session runtime the host and the fallback share.

The submit checks the context series' files like the symbols' (a client error naming the
file), and a real worker process trains the strategy from the data folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from training_engine.errors import DataFileNotFoundError
from training_sessions.service import SessionService

from tests.sessions.conftest import FINAL, request

CARRY = Path(__file__).parents[1] / "engine" / "ktrdr_strategies" / "v3_carry_context.yaml"


def _carry() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(CARRY.read_text())
    return document


def test_submit_names_a_missing_context_file(
    make_service: Callable[..., SessionService], sample_data_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "data"
    shutil.copytree(sample_data_dir, folder)
    (folder / "DGS10.csv").unlink()
    service: SessionService = make_service(data_dir=folder, max_concurrent_jobs=0)
    with pytest.raises(DataFileNotFoundError, match="FRED series DGS10") as caught:
        service.submit(request({"epochs": 1}, strategy=_carry()))
    assert str(folder.resolve() / "DGS10.csv") in str(caught.value)


@pytest.mark.slow
def test_a_worker_trains_a_strategy_with_context_data(service: SessionService) -> None:
    view, _ = service.submit(request({"epochs": 1, "device": "cpu"}, strategy=_carry()))
    done = service.wait_for(view.training_id, FINAL, 300)
    assert done.status == "completed", done.error
    performance = service.performance(view.training_id)
    assert performance.evaluation is not None
    files = {entry["symbol"] for entry in performance.evaluation["data_report"]}
    assert files == {"EURUSD", "GBPUSD"}  # the context instrument's file is reported
    assert performance.evaluation["verdict"]["verdict"].endswith("the train-mean baseline")
