"""Errors raised by the training engine.

Every error the engine raises on purpose derives from ``EngineError``, so a
service can translate the whole family to a client error in one place::

    EngineError
    ├── StrategyConfigError      a strategy file names an unknown key or has a bad value
    ├── DataError
    │   ├── DataFileNotFoundError    no CSV/Parquet file where one was expected
    │   └── DataValidationError      the file exists but its content cannot be used
    ├── DeviceUnavailableError   an explicitly requested device does not exist here
    ├── DeviceOutOfMemoryError   the run does not fit the device's memory, or ran out of it
    ├── UnsupportedDeviceOperationError  the device lacks an operation the model uses (MPS)
    ├── CheckpointError          a checkpoint cannot be read or does not fit the run
    ├── NonFiniteLossError       the loss became NaN or infinite: the run diverged
    ├── ArtifactError            a saved model directory is missing or incomplete
    └── UnsafePathError          a path to write would leave its configured folder

The session runtime's errors (queue full, unknown session, ...) live in
``training_sessions.errors``: they are about running services, not training.
"""

from __future__ import annotations

from pathlib import Path


class EngineError(Exception):
    """Base class for every error the engine raises deliberately."""


class StrategyConfigError(EngineError):
    """A strategy has a misspelt key or a value of the wrong kind.

    ``key`` is the dotted path of the offending key (``model.training.epochs``).
    """

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"strategy key '{key}': {problem}")


class DataError(EngineError):
    """Market data is missing or unusable."""


class DataFileNotFoundError(DataError):
    """No data file for a symbol/timeframe; ``paths`` lists where the engine looked.

    A context series (``context_data``) has no timeframe: ``symbol`` then says what it is
    (``FRED series DGS2 (context_data[1])``) and ``timeframe`` is empty.
    """

    def __init__(
        self, symbol: str, timeframe: str, paths: list[Path], available: str | None = None
    ) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        self.paths = paths
        looked = " or ".join(str(p) for p in paths)
        what = f"{symbol} {timeframe}" if timeframe else symbol
        # What the folder does hold: a client learns which symbols it can ask for.
        found = f"; {available}" if available else ""
        super().__init__(f"no data for {what}: expected {looked}{found}")


class DataValidationError(DataError):
    """A data file exists but cannot be used (bad columns, NaNs that cannot be repaired, ...)."""


class DeviceUnavailableError(EngineError):
    """An explicitly requested device (``cuda:1``, ``mps``) is not available."""


class DeviceOutOfMemoryError(EngineError):
    """The run needs more device memory than there is: refused before it starts (the
    estimate names its parts) or out of memory while it ran."""


class UnsupportedDeviceOperationError(EngineError):
    """The device has no kernel for an operation the model uses (an op MPS lacks)."""


class CheckpointError(EngineError):
    """A checkpoint cannot be loaded, or was written for a different run."""


class ArtifactError(EngineError):
    """A model directory is missing files or cannot be loaded."""


class NonFiniteLossError(EngineError):
    """The loss became NaN or infinite; the run stops at once instead of saving a useless model."""

    def __init__(self, what: str, value: float, epoch: int, last_finite: float | None) -> None:
        self.epoch = epoch
        self.last_finite = last_finite
        last = f"{last_finite:.6g}" if last_finite is not None else "none yet"
        super().__init__(
            f"the {what} became {value} in epoch {epoch} (last finite loss: {last}); the run "
            "diverged: lower the learning rate or check the data"
        )


class UnsafePathError(EngineError):
    """A path built from names (strategy, symbol, training id) would leave its folder."""
