"""The one training engine: device choice, data, features, the loop, checkpoints, artifacts.

Both the training host service and the backend's CPU fallback train through
:func:`train`; nothing else in the codebase runs a training loop.
"""

from typing import TYPE_CHECKING

from training_engine.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from training_engine.artifacts import TrainedModel, load_trained_model, save_model_artifact
    from training_engine.cancellation import CancellationSignal, CancellationToken
    from training_engine.checkpoint import load_checkpoint, save_checkpoint
    from training_engine.data import load_ohlcv
    from training_engine.dataset import NormalizationStats, PreparedDataset, prepare_dataset
    from training_engine.device import DeviceInfo, describe_devices, resolve_device
    from training_engine.errors import (
        ArtifactError,
        CheckpointError,
        DataError,
        DataFileNotFoundError,
        DataValidationError,
        DeviceUnavailableError,
        EngineError,
        StrategyConfigError,
    )
    from training_engine.evaluation import classification_report, majority_baseline_report
    from training_engine.job import ClassificationReport, TrainingJob, TrainingResult
    from training_engine.models import build_model
    from training_engine.progress import EpochMetrics, ProgressCallback, ProgressEvent
    from training_engine.sample_data import write_sample_data
    from training_engine.strategy import (
        StrategyConfig,
        load_strategy,
        parse_strategy,
        validate_symbol,
        validate_timeframe,
        with_overrides,
    )
    from training_engine.trainer import FitOutcome, fit, train

# Imported on first use (torch and pandas load only then); the names are those above.
__getattr__ = lazy_exports(
    __name__,
    {
        "artifacts": ("TrainedModel", "load_trained_model", "save_model_artifact"),
        "cancellation": ("CancellationSignal", "CancellationToken"),
        "checkpoint": ("load_checkpoint", "save_checkpoint"),
        "data": ("load_ohlcv",),
        "dataset": ("NormalizationStats", "PreparedDataset", "prepare_dataset"),
        "device": ("DeviceInfo", "describe_devices", "resolve_device"),
        "errors": (
            "ArtifactError",
            "CheckpointError",
            "DataError",
            "DataFileNotFoundError",
            "DataValidationError",
            "DeviceUnavailableError",
            "EngineError",
            "StrategyConfigError",
        ),
        "evaluation": ("classification_report", "majority_baseline_report"),
        "job": ("ClassificationReport", "TrainingJob", "TrainingResult"),
        "models": ("build_model",),
        "progress": ("EpochMetrics", "ProgressCallback", "ProgressEvent"),
        "sample_data": ("write_sample_data",),
        "strategy": (
            "StrategyConfig",
            "load_strategy",
            "parse_strategy",
            "validate_symbol",
            "validate_timeframe",
            "with_overrides",
        ),
        "trainer": ("FitOutcome", "fit", "train"),
    },
)

__version__ = "0.1.0"

__all__ = [
    "ArtifactError",
    "CancellationSignal",
    "CancellationToken",
    "CheckpointError",
    "ClassificationReport",
    "DataError",
    "DataFileNotFoundError",
    "DataValidationError",
    "DeviceInfo",
    "DeviceUnavailableError",
    "EngineError",
    "EpochMetrics",
    "FitOutcome",
    "NormalizationStats",
    "PreparedDataset",
    "ProgressCallback",
    "ProgressEvent",
    "StrategyConfig",
    "StrategyConfigError",
    "TrainedModel",
    "TrainingJob",
    "TrainingResult",
    "__version__",
    "build_model",
    "classification_report",
    "describe_devices",
    "fit",
    "load_checkpoint",
    "load_ohlcv",
    "load_strategy",
    "load_trained_model",
    "majority_baseline_report",
    "parse_strategy",
    "prepare_dataset",
    "resolve_device",
    "save_checkpoint",
    "save_model_artifact",
    "train",
    "validate_symbol",
    "validate_timeframe",
    "with_overrides",
    "write_sample_data",
]
