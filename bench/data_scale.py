"""How data preparation and training scale with the number of rows.

For each configuration (one symbol with 50k, 200k, 800k or 3.2M one-minute bars, and
10 symbols x 200k) and each model (``momentum_mlp``, lookback 2; ``trend_lstm``,
lookback 24) a FRESH Python process loads the CSV files, runs ``prepare_dataset`` and
then one short epoch of ``fit`` (``--train-batches`` batches of training, then
validation and test predictions over the whole validation and test parts). It
reports the prepare time, the train samples/s and the process's peak resident
memory (``VmHWM``), also after subtracting the memory the process had once its
imports were done; on CUDA also the peak CUDA memory. The data is synthetic
(a regime-switching random walk) and cached in ``--data-dir``.

    python bench/data_scale.py                      # every configuration, CPU
    python bench/data_scale.py --rows 50000 200000 --no-multi --models lstm
    python bench/data_scale.py --engine-path /tmp/base/training-engine   # older code

``--engine-path`` puts another checkout's ``training_engine`` first on the path of
the child processes, to measure code from before a change on the same files.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
STRATEGIES = {
    "mlp": REPO / "config" / "strategies" / "momentum_mlp.yaml",
    "lstm": REPO / "config" / "strategies" / "trend_lstm.yaml",
}
TIMEFRAME = "1m"  # minute bars: 3.2M hourly bars would run past pandas' year 2262
START = np.datetime64("2012-01-02T00:00:00", "s")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Prepare time, train samples/s and peak memory against the number of rows."
    )
    parser.add_argument(
        "--rows", type=int, nargs="*", default=[50_000, 200_000, 800_000, 3_200_000]
    )
    parser.add_argument("--multi-symbols", type=int, default=10, help="symbols of the multi run")
    parser.add_argument("--multi-rows", type=int, default=200_000, help="rows per symbol there")
    parser.add_argument("--no-multi", action="store_true", help="skip the multi-symbol run")
    parser.add_argument("--models", nargs="*", default=["mlp", "lstm"], choices=sorted(STRATEGIES))
    parser.add_argument("--train-batches", type=int, default=50, help="train batches per run")
    parser.add_argument("--prepare-only", action="store_true", help="skip training")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per child")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/data_scale_bench"))
    parser.add_argument("--engine-path", type=Path, help="training-engine folder to measure")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args()


# ---------------------------------------------------------------- synthetic data


def write_symbol(path: Path, bars: int, seed: int) -> None:
    """One symbol's minute bars as CSV (ISO timestamps), written with pyarrow."""
    import pyarrow as pa
    from pyarrow import csv as pa_csv

    rng = np.random.default_rng(seed)
    lengths = rng.geometric(1 / 50, size=bars // 10 + 10)
    states = np.repeat(rng.choice([-1.0, 0.0, 1.0], size=len(lengths)), lengths)[:bars]
    returns = 0.0005 * states + rng.normal(0.0, 0.001, bars)
    close = 100.0 * np.exp(np.cumsum(returns))
    open_ = np.concatenate(([100.0], close[:-1]))
    wick = np.abs(rng.normal(0.0, 0.0005, (2, bars)))
    stamps = START + np.arange(bars, dtype=np.int64) * np.timedelta64(60, "s")
    table = pa.table(
        {
            "timestamp": np.char.add(np.datetime_as_string(stamps, unit="s"), "Z"),
            "open": open_,
            "high": np.maximum(open_, close) * np.exp(wick[0]),
            "low": np.minimum(open_, close) * np.exp(-wick[1]),
            "close": close,
            "volume": np.round(rng.lognormal(10.0, 0.3, bars)),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pa_csv.write_csv(table, path)


def ensure_data(data_dir: Path, symbols: list[str], bars: int) -> Path:
    folder = data_dir / f"{len(symbols)}x{bars}"
    for index, symbol in enumerate(symbols):
        path = folder / f"{symbol}_{TIMEFRAME}.csv"
        if not path.is_file():
            write_symbol(path, bars, seed=index)
    return folder


# ---------------------------------------------------------------- one measurement


def _status_bytes(key: str) -> int:
    with open("/proc/self/status", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) * 1024
    return 0


def _rss_bytes() -> int:
    return _status_bytes("VmRSS")


def _peak_rss_bytes() -> int:
    """This process's peak resident memory since it started.

    ``VmHWM`` rather than ``ru_maxrss``: Linux carries ``ru_maxrss`` over a fork and
    exec, so a child would report the parent's peak (e.g. after writing 3.2M rows).
    """
    peak = _status_bytes("VmHWM")
    return peak or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _shorten(data: Any, samples: int) -> Any:
    """The dataset with only the first ``samples`` train samples (either layout)."""
    if hasattr(data, "train_ends"):
        weights = getattr(data, "w_train", None)
        return replace(
            data,
            train_ends=data.train_ends[:samples],
            y_train=data.y_train[:samples],
            **({} if weights is None else {"w_train": weights[:samples]}),
        )
    return replace(data, x_train=data.x_train[:samples], y_train=data.y_train[:samples])


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Run in a fresh process: prepare, then a short fit; return the figures."""
    import torch
    from training_engine.dataset import prepare_dataset
    from training_engine.strategy import load_strategy, with_overrides
    from training_engine.trainer import fit

    torch.set_num_threads(spec["threads"])
    strategy = with_overrides(
        load_strategy(STRATEGIES[spec["model"]]),
        training={"epochs": 1, "device": spec["device"]},
        symbols=spec["symbols"],
        timeframes=[TIMEFRAME],
    )
    imported_rss = _rss_bytes()
    started = time.perf_counter()
    data = prepare_dataset(strategy, Path(spec["data_dir"]))
    prepare_seconds = time.perf_counter() - started
    result: dict[str, Any] = {
        **spec,
        "prepare_seconds": prepare_seconds,
        "imported_rss": imported_rss,
        "prepare_peak_rss": _peak_rss_bytes(),
        "n_features": len(data.feature_names),
        "samples": len(data.y_train) + len(data.y_val) + len(data.y_test),
        "feature_rows": int(data.rows.shape[0]) if hasattr(data, "rows") else None,
    }
    if not spec["prepare_only"]:
        samples = spec["train_batches"] * strategy.training.batch_size
        outcome = fit(_shorten(data, samples), strategy)
        result["train_samples_per_second"] = outcome.result.history[0].samples_per_second
        result["peak_rss"] = _peak_rss_bytes()
        if torch.cuda.is_available() and spec["device"] != "cpu":
            result["peak_cuda_bytes"] = torch.cuda.max_memory_allocated()
    return result


def run_child(spec: dict[str, Any], engine_path: Path | None) -> dict[str, Any]:
    env = dict(os.environ)
    if engine_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(engine_path), env.get("PYTHONPATH", "")])
    completed = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        return {**spec, "error": completed.stderr.strip().splitlines()[-1:]}
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


# ---------------------------------------------------------------- report


def _gb(value: float | None) -> str:
    return "-" if value is None else f"{value / 1e9:.2f}"


def print_table(results: list[dict[str, Any]]) -> None:
    print(
        "| model | symbols x rows | prepare (s) | prepare (us/row) | train samples/s "
        "| feature matrix (MB) | peak RSS (GB) | peak - imports (GB) | peak / matrix |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        label = f"{len(r['symbols'])} x {r['bars']:,}"
        if "error" in r:
            print(f"| {r['model']} | {label} | failed: {r['error']} |")
            continue
        rows = len(r["symbols"]) * r["bars"]
        matrix = rows * r["n_features"] * 4
        peak = r.get("peak_rss", r["prepare_peak_rss"])
        rate = r.get("train_samples_per_second")
        print(
            f"| {r['model']} | {label} | {r['prepare_seconds']:.1f} "
            f"| {1e6 * r['prepare_seconds'] / rows:.1f} "
            f"| {'-' if rate is None else f'{rate:,.0f}'} | {matrix / 1e6:.0f} "
            f"| {_gb(peak)} | {_gb(peak - r['imported_rss'])} "
            f"| {(peak - r['imported_rss']) / matrix:.1f} |"
        )


def main() -> None:
    args = parse_args()
    if args.child:
        print(json.dumps(measure(json.loads(args.child))))
        return
    configs = [(["BENCH"], rows) for rows in args.rows]
    if not args.no_multi:
        configs.append(([f"SYM{i}" for i in range(args.multi_symbols)], args.multi_rows))
    results = []
    for symbols, bars in configs:
        folder = ensure_data(args.data_dir, symbols, bars)
        for model in args.models:
            spec = {
                "model": model,
                "symbols": symbols,
                "bars": bars,
                "data_dir": str(folder),
                "device": args.device,
                "threads": args.threads,
                "train_batches": args.train_batches,
                "prepare_only": args.prepare_only,
            }
            result = run_child(spec, args.engine_path)
            results.append(result)
            print(json.dumps({k: v for k, v in result.items() if k != "symbols"}), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print_table(results)


if __name__ == "__main__":
    main()
