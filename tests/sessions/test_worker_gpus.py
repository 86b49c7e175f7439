"""Each session's worker is started on its own card: real workers, the cards stood in for.

The service sees two CUDA cards (tests/fixtures/devices.py stands in for torch's and
NVML's view), so ``auto`` sessions are pinned to ``cuda`` and the supervisor gives each
worker a card. The workers are real processes on this machine, where those cards do not
exist: they end ``failed`` ("CUDA is not available"), on any machine. What is checked
is what each worker was told.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from training_engine.device_probe import use_probe
from training_sessions.service import SessionService

from tests.fixtures.devices import FakeDeviceProbe, cuda_card, nvml_card
from tests.sessions.conftest import FINAL, SHORT_RUN, request

pytestmark = pytest.mark.slow

TWO_CARDS = FakeDeviceProbe(
    [cuda_card(0, uuid="aaaa-1"), cuda_card(1, uuid="bbbb-2")],
    nvml=[nvml_card(0, "aaaa-1"), nvml_card(1, "bbbb-2")],
)


@pytest.fixture
def two_card_service(
    make_service: Callable[..., SessionService], tmp_path: Path
) -> Iterator[SessionService]:
    """A service running two sessions at once on a host with two cards, logging to files."""
    with use_probe(TWO_CARDS):
        yield make_service(max_concurrent_jobs=2, log_dir=tmp_path / "logs")


def test_two_sessions_at_once_are_given_different_cards(two_card_service: SessionService) -> None:
    first, _ = two_card_service.submit(request({**SHORT_RUN, "device": "auto"}))
    second, _ = two_card_service.submit(request({**SHORT_RUN, "device": "auto"}))

    assert first.device == second.device == "cuda"
    logs = []
    for view in (first, second):
        done = two_card_service.wait_for(view.training_id, FINAL, 180)
        assert done.status == "failed" and "CUDA is not available" in (done.error or "")
        logs.append(two_card_service.log(view.training_id))

    cards = {card for card in ("GPU-aaaa-1", "GPU-bbbb-2") for log in logs if f"={card}" in log}
    assert cards == {"GPU-aaaa-1", "GPU-bbbb-2"}
    assert all(log.count("CUDA_VISIBLE_DEVICES=") == 1 for log in logs)


def test_a_deterministic_session_starts_with_a_deterministic_cublas(
    two_card_service: SessionService,
) -> None:
    view, _ = two_card_service.submit(
        request({**SHORT_RUN, "device": "cpu", "deterministic": True})
    )
    done = two_card_service.wait_for(view.training_id, FINAL, 180)
    assert done.status == "completed", done.error
    log = two_card_service.log(view.training_id)
    assert "CUBLAS_WORKSPACE_CONFIG=:4096:8" in log
    assert "CUDA_VISIBLE_DEVICES" not in log  # a session naming its device is not placed
