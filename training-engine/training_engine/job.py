"""What a training run is asked to do, and what it reports back."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from training_engine.strategy import StrategyConfig

RunStatus = Literal["completed", "cancelled"]


@dataclass(frozen=True, slots=True)
class TrainingJob:
    """One training run: a validated strategy plus where to read and write.

    ``symbols``/``timeframes``/settings overrides are applied to ``strategy``
    beforehand (``strategy.with_overrides``); the engine trains exactly what it
    is given. ``checkpoint_path`` is the single file the run checkpoints to
    (every epoch and on cancellation); ``resume_from`` names a checkpoint to
    continue from, usually the same file.
    """

    strategy: StrategyConfig
    data_dir: Path
    models_dir: Path
    checkpoint_path: Path
    start_date: str | None = None
    end_date: str | None = None
    resume_from: Path | None = None


@dataclass(frozen=True, slots=True)
class EpochMetrics:
    """One row of a run's history."""

    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    learning_rate: float
    epoch_seconds: float
    samples_per_second: float


@dataclass(frozen=True, slots=True)
class ClassificationReport:
    """Test-set metrics for the model or for the majority-class baseline."""

    accuracy: float
    macro_f1: float
    precision: dict[str, float]
    recall: dict[str, float]
    confusion_matrix: list[list[int]]
    support: int


@dataclass(frozen=True, slots=True)
class RegressionReport:
    """Test-set metrics of a regression target (forward returns)."""

    r2: float
    mae: float
    rmse: float
    directional_accuracy: float
    support: int


TestReport = ClassificationReport | RegressionReport


@dataclass(slots=True)
class TrainingResult:
    """What a finished or cancelled run returns (failures raise instead)."""

    status: RunStatus
    device: str
    epochs_completed: int
    total_epochs: int
    history: list[EpochMetrics] = field(default_factory=list)
    test_metrics: TestReport | None = None
    baseline_metrics: TestReport | None = None
    model_path: Path | None = None
    checkpoint_path: Path | None = None
    stopped_early: bool = False
    feature_names: list[str] = field(default_factory=list)
    # JSON-safe: the verdict against the baselines, class shares, data report, split ranges.
    evaluation: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (paths as strings)."""
        data = asdict(self)
        for key in ("model_path", "checkpoint_path"):
            data[key] = str(data[key]) if data[key] is not None else None
        return data
