"""Sample windows gathered on the device from stored feature rows, batch by batch.

A :class:`PreparedDataset` keeps each feature row once plus the row each sample's
window ends at. :class:`WindowedRows` indexes like the ``[samples, lookback,
features]`` tensor it stands for (``x[index_tensor]``, ``x[i:j]``, ``len``,
``shape``), but builds only the windows of the batch asked for:
``rows[ends[:, None] + (-lookback + 1 .. 0)]``, oldest row first. Rows too large for the
device stay in host memory: each batch's windows are gathered there and copied over.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from training_engine.dataset import PreparedDataset


class WindowedRows:
    """The windows of ``lookback`` rows ending at ``ends``; only gathered when indexed.

    ``device`` is where the windows are wanted; when the rows (and ends) are elsewhere
    (host memory), each gathered batch is copied there.
    """

    def __init__(
        self,
        rows: torch.Tensor,
        ends: torch.Tensor,
        lookback: int,
        device: torch.device | None = None,
    ) -> None:
        if rows.ndim != 2 or ends.ndim != 1:
            raise ValueError(f"need rows [n, f] and ends [m], got {rows.shape}, {ends.shape}")
        self.rows = rows
        self.ends = ends
        self.lookback = lookback
        self._device = rows.device if device is None else device
        # Offsets from a window's end row back to its first row, oldest first.
        self._offsets = torch.arange(1 - lookback, 1, device=rows.device)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (int(self.ends.shape[0]), self.lookback, int(self.rows.shape[1]))

    @property
    def device(self) -> torch.device:
        return self._device

    def __len__(self) -> int:
        return int(self.ends.shape[0])

    def __getitem__(self, index: torch.Tensor | slice) -> torch.Tensor:
        """The windows of the samples ``index`` selects: ``[len(index), lookback, features]``."""
        on_host = self._device != self.rows.device
        if on_host and isinstance(index, torch.Tensor):
            index = index.to(self.rows.device)
        ends = self.ends[index]
        positions = (ends[:, None] + self._offsets).reshape(-1)
        gathered = self.rows.index_select(0, positions)
        windows = gathered.view(ends.shape[0], self.lookback, self.rows.shape[1])
        return windows.to(self._device) if on_host else windows


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


def to_device(
    data: PreparedDataset, device: torch.device, *, rows_on_host: bool = False
) -> DeviceDataset:
    """Move the rows (once), the end indices, the labels and the train weights to ``device``.

    Labels keep their kind: int64 classes, or float32 values for a regression target.
    ``rows_on_host``: the rows and end indices stay in host memory and each batch's
    windows are copied to ``device`` when gathered. (Not pinned: the gathered batch is a
    new tensor whatever the rows are, and pinning rows too large for the GPU would lock
    as much host memory.)
    """
    rows_device = torch.device("cpu") if rows_on_host else device
    rows = torch.from_numpy(np.ascontiguousarray(data.rows, dtype=np.float32)).to(rows_device)

    def part(ends: np.ndarray, labels: np.ndarray) -> tuple[WindowedRows, torch.Tensor]:
        ends_tensor = torch.from_numpy(np.ascontiguousarray(ends, dtype=np.int64)).to(rows_device)
        y_type = np.float32 if np.issubdtype(labels.dtype, np.floating) else np.int64
        y = torch.from_numpy(np.ascontiguousarray(labels, dtype=y_type)).to(device)
        return WindowedRows(rows, ends_tensor, data.lookback, device), y

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


def release_host_rows(data: PreparedDataset) -> None:
    """Let go of ``data.rows`` once a device holds them (MPS: the host's memory is the GPU's).

    The rows become a zero-stride stand-in of the same shape, so ``n_features`` and the
    sizes the artifact records still read right; the array itself is freed unless
    something else holds it. ``PreparedDataset`` is frozen to keep every other reader
    from changing it: this is the one deliberate exception.
    """
    stand_in = np.broadcast_to(np.zeros((), dtype=data.rows.dtype), data.rows.shape)
    object.__setattr__(data, "rows", stand_in)


def gather_windows(data: PreparedDataset, part: str) -> np.ndarray:
    """Every window of ``part`` (train, val or test) as one ``[n, lookback, f]`` array.

    A materialised copy for inspection and tests; training never builds it.
    """
    ends = {"train": data.train_ends, "val": data.val_ends, "test": data.test_ends}[part]
    windows = WindowedRows(torch.from_numpy(data.rows), torch.from_numpy(ends), data.lookback)
    return windows[:].numpy()
