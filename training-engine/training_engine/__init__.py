"""The one training engine: device choice, data, features, the loop, checkpoints, artifacts.

Both the training host service and the backend's CPU fallback train through
:func:`train`; nothing else in the codebase runs a training loop.
"""

from training_engine.cancellation import CancellationSignal, CancellationToken
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
from training_engine.job import ClassificationReport, EpochMetrics, TrainingJob, TrainingResult
from training_engine.progress import ProgressCallback, ProgressEvent
from training_engine.strategy import (
    StrategyConfig,
    load_strategy,
    parse_strategy,
    validate_symbol,
    validate_timeframe,
    with_overrides,
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
    "ProgressCallback",
    "ProgressEvent",
    "StrategyConfig",
    "StrategyConfigError",
    "TrainingJob",
    "TrainingResult",
    "__version__",
    "describe_devices",
    "load_strategy",
    "parse_strategy",
    "resolve_device",
    "validate_symbol",
    "validate_timeframe",
    "with_overrides",
]
