"""Sample windows gathered on the device from stored feature rows, batch by batch.

A :class:`PreparedDataset` keeps each feature row once plus the row each sample's
window ends at. :class:`WindowedRows` indexes like the ``[samples, lookback,
features]`` tensor it stands for (``x[index_tensor]``, ``x[i:j]``, ``len``,
``shape``), but builds only the windows of the batch asked for:
``rows[ends[:, None] + (-lookback + 1 .. 0)]``, oldest row first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from training_engine.dataset import PreparedDataset


class WindowedRows:
    """The windows of ``lookback`` rows ending at ``ends``; only gathered when indexed."""

    def __init__(self, rows: torch.Tensor, ends: torch.Tensor, lookback: int) -> None:
        if rows.ndim != 2 or ends.ndim != 1:
            raise ValueError(f"need rows [n, f] and ends [m], got {rows.shape}, {ends.shape}")
        self.rows = rows
        self.ends = ends
        self.lookback = lookback
        # Offsets from a window's end row back to its first row, oldest first.
        self._offsets = torch.arange(1 - lookback, 1, device=rows.device)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (int(self.ends.shape[0]), self.lookback, int(self.rows.shape[1]))

    @property
    def device(self) -> torch.device:
        return self.rows.device

    def __len__(self) -> int:
        return int(self.ends.shape[0])

    def __getitem__(self, index: torch.Tensor | slice) -> torch.Tensor:
        """The windows of the samples ``index`` selects: ``[len(index), lookback, features]``."""
        ends = self.ends[index]
        positions = (ends[:, None] + self._offsets).reshape(-1)
        gathered = self.rows.index_select(0, positions)
        return gathered.view(ends.shape[0], self.lookback, self.rows.shape[1])


@dataclass(frozen=True, slots=True)
class DeviceDataset:
    """A prepared dataset on one device: the rows once, and each part's windows and labels."""

    x_train: WindowedRows
    y_train: torch.Tensor
    x_val: WindowedRows
    y_val: torch.Tensor
    x_test: WindowedRows
    y_test: torch.Tensor
    w_train: torch.Tensor | None = None  # per-sample loss weights of the train part


def to_device(data: PreparedDataset, device: torch.device) -> DeviceDataset:
    """Move the rows (once), the end indices, the labels and the train weights to ``device``.

    Labels keep their kind: int64 classes, or float32 values for a regression target.
    """
    rows = torch.from_numpy(np.ascontiguousarray(data.rows, dtype=np.float32)).to(device)

    def part(ends: np.ndarray, labels: np.ndarray) -> tuple[WindowedRows, torch.Tensor]:
        ends_tensor = torch.from_numpy(np.ascontiguousarray(ends, dtype=np.int64)).to(device)
        y_type = np.float32 if np.issubdtype(labels.dtype, np.floating) else np.int64
        y = torch.from_numpy(np.ascontiguousarray(labels, dtype=y_type)).to(device)
        return WindowedRows(rows, ends_tensor, data.lookback), y

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
        part(data.train_ends, data.y_train),
        part(data.val_ends, data.y_val),
        part(data.test_ends, data.y_test),
    )
    w_train = (
        None
        if data.w_train is None
        else torch.from_numpy(np.ascontiguousarray(data.w_train, dtype=np.float32)).to(device)
    )
    return DeviceDataset(x_train, y_train, x_val, y_val, x_test, y_test, w_train)


def gather_windows(data: PreparedDataset, part: str) -> np.ndarray:
    """Every window of ``part`` (train, val or test) as one ``[n, lookback, f]`` array.

    A materialised copy for inspection and tests; training never builds it.
    """
    ends = {"train": data.train_ends, "val": data.val_ends, "test": data.test_ends}[part]
    windows = WindowedRows(torch.from_numpy(data.rows), torch.from_numpy(ends), data.lookback)
    return windows[:].numpy()
