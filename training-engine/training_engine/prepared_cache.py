"""Prepared datasets kept in memory and reused by every run over the same inputs.

A sweep or a population trains many strategies over the same data: loading the files,
computing the features and labels, splitting and normalising (``prepare_dataset``) is
then done once per worker process instead of once per run.

**Never stale.** The key (:func:`dataset_key`) is a hash of everything the preparation
reads: the strategy's sections that shape the arrays (all of it but ``training``,
``model`` and ``name``, which ``training_engine.dataset`` does not read: a sweep over
learning rates or layer sizes shares one preparation), the date range, the data folder,
and the *content* of every file the strategy may read (each candidate path of each
symbol, timeframe and context series, found or not; a file that appears, disappears or
changes by one byte changes the key). Contents, not modification times: a file rewritten
within the file system's clock tick, or copied with its times kept, is still told
apart. The key is computed again after a preparation and the arrays are kept only when
it has not moved, so a file changed while it was being read is never cached under
either content.

**Bit-identical.** A hit returns the very arrays a fresh preparation would have built
(the preparation is deterministic), so a resumed run trains on the same rows as the
run it continues. Callers must not change the arrays they get (the trainer keeps the
host rows when it trains from a cache).

**Bounded.** Least recently used datasets are dropped once the arrays held exceed
``max_bytes``; a dataset larger than that is used once and not kept.

Nothing here knows of processes: a warm local worker holds one cache, a Ray actor can
hold another.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from training_engine.context_data import context_file_candidates
from training_engine.data import data_file_candidates
from training_engine.dataset import NormalizationStats, PreparedDataset
from training_engine.strategy import StrategyConfig

# Sections of a strategy the preparation does not read (see the module docstring).
NOT_PREPARATION_INPUTS = frozenset({"training", "model", "name"})
_READ_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class CachedPreparation:
    """A prepared dataset and whether it came from the cache."""

    data: PreparedDataset
    hit: bool
    key: str


def dataset_key(
    strategy: StrategyConfig, data_dir: Path, start_date: str | None, end_date: str | None
) -> str:
    """A hash of every input ``prepare_dataset`` reads for this strategy and range.

    Raises:
        UnsafePathError: a symbol or context id would name a file outside ``data_dir``.
    """
    sections = {
        name: value
        for name, value in strategy.model_dump(mode="json").items()
        if name not in NOT_PREPARATION_INPUTS
    }
    folder = Path(data_dir).resolve()
    files = {str(path): _content_digest(path) for path in _input_files(strategy, folder)}
    canonical = json.dumps(
        {
            "strategy": sections,
            "start_date": start_date,
            "end_date": end_date,
            "data_dir": str(folder),
            "files": files,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _input_files(strategy: StrategyConfig, data_dir: Path) -> Iterable[Path]:
    for symbol in strategy.symbols:
        for timeframe in strategy.timeframes:
            yield from data_file_candidates(data_dir, symbol, timeframe)
    yield from context_file_candidates(strategy, data_dir)


def _content_digest(path: Path) -> str | None:
    """The file's content hash (links followed); None when there is no such file."""
    try:
        with path.open("rb") as file:
            return hashlib.file_digest(file, "blake2b").hexdigest()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def dataset_bytes(data: PreparedDataset) -> int:
    """The memory the dataset's arrays hold."""
    total = 0
    for field in fields(data):
        value = getattr(data, field.name)
        if isinstance(value, np.ndarray):
            total += value.nbytes
        elif isinstance(value, NormalizationStats):
            total += value.mean.nbytes + value.std.nbytes
    return total


class PreparedDataCache:
    """Prepared datasets by :func:`dataset_key`, least recently used dropped first.

    Args:
        max_bytes: the most array memory kept (0: nothing is kept).
    """

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[PreparedDataset, int]] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    @property
    def held_bytes(self) -> int:
        return self._held

    def __len__(self) -> int:
        return len(self._entries)

    def prepared(
        self,
        strategy: StrategyConfig,
        data_dir: Path,
        start_date: str | None,
        end_date: str | None,
        prepare: Callable[[], PreparedDataset],
    ) -> CachedPreparation:
        """The dataset for these inputs: the cached one, else ``prepare()``'s (then kept)."""
        key = dataset_key(strategy, data_dir, start_date, end_date)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                return CachedPreparation(entry[0], hit=True, key=key)
        data = prepare()
        # A file that changed while it was read: keep nothing, under either content.
        if dataset_key(strategy, data_dir, start_date, end_date) == key:
            self._keep(key, data)
        return CachedPreparation(data, hit=False, key=key)

    def _keep(self, key: str, data: PreparedDataset) -> None:
        size = dataset_bytes(data)
        if size > self._max_bytes:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._held -= previous[1]
            self._entries[key] = (data, size)
            self._held += size
            while self._held > self._max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._held -= dropped

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._held = 0
