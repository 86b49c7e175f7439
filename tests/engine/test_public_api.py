"""The engine's public surface is pinned: changing it is a deliberate act."""

from __future__ import annotations

import training_engine

EXPECTED = {
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
}


def test_public_api_is_exactly_the_pinned_names() -> None:
    assert set(training_engine.__all__) == EXPECTED


def test_every_public_name_is_importable() -> None:
    missing = [name for name in training_engine.__all__ if not hasattr(training_engine, name)]
    assert missing == []
