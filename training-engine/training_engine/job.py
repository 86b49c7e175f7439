"""What a training run is asked to do, and what it reports back."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from training_engine.progress import EpochMetrics
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


@dataclass(frozen=True, slots=True)
class PartScore:
    """Loss and accuracy of the saved weights on one part of the data (train, validation, test).

    Classes: cross-entropy and accuracy; a regression target: mean squared error and
    directional accuracy (the share of samples whose sign is right). Unweighted, whatever
    loss the run trained with: what KTRDR's clients are told of a model.
    """

    loss: float
    accuracy: float


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
    # Of a completed run: "train", "validation", "test", scored from the data it trained on.
    part_scores: dict[str, PartScore] = field(default_factory=dict)
    # KTRDR's copy of the model (model_folders); when it could not be written, why not.
    ktrdr_model_path: Path | None = None
    ktrdr_error: str | None = None
    # Why KTRDR's backtester cannot run the model as trained (None: its copy has
    # metadata_v3.json and KTRDR's ModelBundle loads it).
    ktrdr_unsupported: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (paths as strings)."""
        data = asdict(self)
        for key in ("model_path", "checkpoint_path", "ktrdr_model_path"):
            data[key] = str(data[key]) if data[key] is not None else None
        return data
