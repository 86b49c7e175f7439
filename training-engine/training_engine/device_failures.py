"""An accelerator's failures as the engine's errors, each naming the problem and the remedy.

torch reports running out of device memory, an operation MPS has no kernel for and an
operation without a deterministic kernel as generic exceptions; a session would end
with a bare ``RuntimeError``. :func:`device_errors` turns them into
:class:`DeviceOutOfMemoryError`, :class:`UnsupportedDeviceOperationError` and
:class:`StrategyConfigError` (``deterministic``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import torch

from training_engine.device import device_name
from training_engine.errors import (
    DeviceOutOfMemoryError,
    StrategyConfigError,
    UnsupportedDeviceOperationError,
)

_MPS_MISSING_OP = re.compile(r"operator '([^']+)' is not currently implemented for the MPS device")
_MPS_OUT_OF_MEMORY = "MPS backend out of memory"
_NOT_DETERMINISTIC = "does not have a deterministic implementation"


@contextlib.contextmanager
def device_errors(device: torch.device, batch_size: int) -> Iterator[None]:
    """Translate the device failures of the block (a run's setup, loop and evaluation)."""
    try:
        yield
    except torch.OutOfMemoryError as exc:
        raise out_of_memory(device, batch_size, exc) from exc
    except NotImplementedError as exc:
        missing = _MPS_MISSING_OP.search(str(exc))
        if missing is None:
            raise
        raise UnsupportedDeviceOperationError(
            f"MPS has no kernel for {missing.group(1)}, which this model uses: set "
            "PYTORCH_ENABLE_MPS_FALLBACK=1 in the service's environment (that operation then "
            "runs on the CPU) or train with device: cpu"
        ) from exc
    except RuntimeError as exc:
        if _MPS_OUT_OF_MEMORY in str(exc):
            raise out_of_memory(device, batch_size, exc) from exc
        if _NOT_DETERMINISTIC in str(exc):
            raise StrategyConfigError(
                "model.training.deterministic",
                f"{_first_line(exc)}; set deterministic: false to train this model on "
                f"{device_name(device)}",
            ) from exc
        raise


def out_of_memory(
    device: torch.device, batch_size: int, exc: BaseException
) -> DeviceOutOfMemoryError:
    """The error of a run that ran out of memory on ``device`` mid-way."""
    return DeviceOutOfMemoryError(
        f"{device_name(device)} ran out of memory ({_first_line(exc)}): lower batch_size "
        f"(now {batch_size}), use a smaller model, run fewer sessions on this device, or "
        "train with device: cpu"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
