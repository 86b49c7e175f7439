"""Stop a run mid-epoch, resume it from its checkpoint, compare with the run left alone.

Shared by the trainer tests (CPU), the GPU tests (CUDA, MPS) and ``bench/gpu_check.py``.
"""

from __future__ import annotations

from pathlib import Path

from training_engine.cancellation import CancellationToken
from training_engine.dataset import PreparedDataset
from training_engine.progress import ProgressCallback, ProgressEvent
from training_engine.strategy import StrategyConfig
from training_engine.trainer import FitOutcome, fit


def cancel_at(token: CancellationToken, epoch: int, batch: int) -> ProgressCallback:
    """A progress listener that stops the run once ``batch`` of ``epoch`` is trained."""

    def on_progress(event: ProgressEvent) -> None:
        if event.kind == "batch" and (event.epoch, event.batch) == (epoch, batch):
            token.cancel()

    return on_progress


def stop_and_resume(
    data: PreparedDataset, strategy: StrategyConfig, folder: Path, epoch: int, batch: int
) -> tuple[FitOutcome, FitOutcome]:
    """The run left alone, and the same run stopped after ``batch`` of ``epoch`` and resumed."""
    uninterrupted = fit(data, strategy, checkpoint_path=folder / "full.pt")
    token = CancellationToken()
    checkpoint = folder / "stopped.pt"
    first = fit(
        data,
        strategy,
        checkpoint_path=checkpoint,
        cancel=token,
        on_progress=cancel_at(token, epoch, batch),
    )
    assert first.result.status == "cancelled", first.result.status
    resumed = fit(data, strategy, checkpoint_path=checkpoint, resume_from=checkpoint)
    return uninterrupted, resumed
