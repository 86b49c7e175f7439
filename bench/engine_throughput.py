"""Engine throughput against a bare PyTorch loop on the same model, data and precision.

Both sides train an MLP 64 -> 128 -> 128 -> 3 with Adam, batch 256, over the same
random tensors: the engine through ``training_engine.trainer.fit`` (validation,
test evaluation, progress and cancellation hooks included, checkpoints off), the
bare loop over index slices of a per-epoch permutation. Both compute in the same
precision: the one the engine chooses for ``--precision`` on this device (bf16 asked
of a card without native bf16 runs fp16 on both sides), fp16 with a gradient scaler on
both, and both wait for the device before the clock stops. Runs alternate between the
two (and which goes first) so background load hits both alike; the median of each is
reported. The engine gathers each batch's windows from stored rows; the bare loop
indexes windows materialised beforehand (the cheapest layout to index). The last line
is ``engine/bare = R``.

    python bench/engine_throughput.py                                  # CPU, defaults below
    python bench/engine_throughput.py --device cuda --precision bf16   # on a GPU machine
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from training_engine.dataset import PreparedDataset, dataset_from_windows
from training_engine.device import resolve_device
from training_engine.device_probe import current_probe
from training_engine.precision import Precision, autocast, choose_precision
from training_engine.strategy import StrategyConfig, parse_strategy
from training_engine.trainer import fit
from training_engine.windows import gather_windows

HIDDEN = 128
N_CLASSES = 3
PRECISIONS = ("off", "bf16", "fp16")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=(
            "Compare samples/s of the training engine's loop with a bare PyTorch loop "
            "(MLP 64 -> 128 -> 128 -> 3, Adam) on the same in-memory data, in the same precision."
        )
    )
    parser.add_argument("--samples", type=int, default=200_000, help="training samples")
    parser.add_argument("--features", type=int, default=64, help="input features")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per timed run")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each (median taken)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto")
    parser.add_argument(
        "--precision", default="off", choices=PRECISIONS, help="mixed precision of both sides"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    return parser


def make_data(samples: int, features: int, seed: int = 0) -> PreparedDataset:
    """Random windows of one bar and random labels; val/test kept small (1% each)."""
    rng = np.random.default_rng(seed)
    held_out = max(256, samples // 100)

    def part(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.standard_normal((n, 1, features), dtype=np.float32)
        return x, rng.integers(0, N_CLASSES, size=n, dtype=np.int64)

    parts = [part(samples), part(held_out), part(held_out)]
    return dataset_from_windows(parts, [f"f{i}" for i in range(features)], symbols=("BENCH",))


def make_strategy(args: argparse.Namespace) -> StrategyConfig:
    return parse_strategy(
        {
            "name": "bench",
            "training_data": {"symbols": {"list": ["BENCH"]}, "timeframes": {"list": ["1h"]}},
            "indicators": [{"name": "rsi"}],
            "model": {
                "type": "mlp",
                "architecture": {"hidden_layers": [HIDDEN, HIDDEN], "dropout": 0.0},
                "training": {
                    "optimizer": "adam",
                    "learning_rate": 1e-3,
                    "batch_size": args.batch_size,
                    "epochs": args.epochs,
                    "gradient_clip": None,  # the bare loop does not clip either
                    "early_stopping": {"enabled": False},
                    "device": args.device,
                    "mixed_precision": args.precision,
                },
            },
        }
    )


def synchronize(device: torch.device) -> None:
    """Wait until the device has run everything queued: a clock read before that lies."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def run_engine(
    data: PreparedDataset, strategy: StrategyConfig, device: torch.device
) -> tuple[float, float]:
    """Wall and CPU seconds of one ``fit`` call (setup, epochs, validation and test included)."""
    synchronize(device)
    started, cpu_started = time.perf_counter(), time.process_time()
    fit(data, strategy)
    synchronize(device)
    return time.perf_counter() - started, time.process_time() - cpu_started


def run_bare(
    windows: np.ndarray,
    labels: np.ndarray,
    args: argparse.Namespace,
    device: torch.device,
    precision: Precision,
) -> tuple[float, float]:
    """Wall and CPU seconds of the same training written as a plain PyTorch loop."""
    synchronize(device)
    started, cpu_started = time.perf_counter(), time.process_time()
    torch.manual_seed(0)
    x = torch.from_numpy(windows.reshape(len(windows), -1)).to(device)
    y = torch.from_numpy(labels).to(device)
    model = nn.Sequential(
        nn.Linear(args.features, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, N_CLASSES),
    ).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler(device.type) if precision.needs_scaler else None
    n, batch = x.shape[0], args.batch_size
    for _ in range(args.epochs):
        order = torch.randperm(n).to(device)
        for start in range(0, n, batch):
            index = order[start : start + batch]
            with autocast(device, precision.dtype):
                loss = F.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad()
            if scaler is None:
                loss.backward()
                optimizer.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
    synchronize(device)
    return time.perf_counter() - started, time.process_time() - cpu_started


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


@dataclass(frozen=True, slots=True)
class Throughput:
    """Median samples per second of each side, and the precision both computed in."""

    precision: str
    engine: float
    bare: float
    engine_per_cpu_second: float
    bare_per_cpu_second: float

    @property
    def ratio(self) -> float:
        return self.engine / self.bare


def measure(args: argparse.Namespace, report: Callable[[str], None] = print) -> Throughput:
    """Run the warm-up and the alternating timed runs; ``report`` gets each run's line."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    precision = choose_precision(args.precision, device, current_probe())
    data = make_data(args.samples, args.features)
    bare_windows = gather_windows(data, "train")  # materialised once, outside the timing
    strategy = make_strategy(args)
    total = args.samples * args.epochs
    # Warm-up (allocator, kernels, lazy init) outside the timed runs.
    warm = argparse.Namespace(**{**vars(args), "epochs": 1})
    small = make_data(4096, args.features)
    run_bare(gather_windows(small, "train"), small.y_train, warm, device, precision)
    run_engine(make_data(4096, args.features), make_strategy(warm), device)

    runners: dict[str, Callable[[], tuple[float, float]]] = {
        "engine": lambda: run_engine(data, strategy, device),
        "bare": lambda: run_bare(bare_windows, data.y_train, args, device, precision),
    }
    rates: dict[str, list[float]] = {"engine": [], "bare": []}
    # Samples per CPU-second: less sensitive than wall time to other load on a shared host.
    cpu_rates: dict[str, list[float]] = {"engine": [], "bare": []}
    for run in range(args.runs):
        order = ["engine", "bare"] if run % 2 == 0 else ["bare", "engine"]
        for name in order:
            wall, cpu = runners[name]()
            rates[name].append(total / wall)
            cpu_rates[name].append(total / cpu)
        report(
            f"run {run + 1}: engine {rates['engine'][-1]:,.0f} samples/s, "
            f"bare {rates['bare'][-1]:,.0f} samples/s"
        )
    return Throughput(
        precision=precision.name,
        engine=statistics.median(rates["engine"]),
        bare=statistics.median(rates["bare"]),
        engine_per_cpu_second=statistics.median(cpu_rates["engine"]),
        bare_per_cpu_second=statistics.median(cpu_rates["bare"]),
    )


def main() -> None:
    args = build_parser().parse_args()
    device = resolve_device(args.device)
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} CPU threads")
    print(f"CPU: {cpu_model()}")
    if device.type == "cuda":
        print(f"GPU: {torch.cuda.get_device_name(device)}")
    print(
        f"{args.samples} samples x {args.features} features, batch {args.batch_size}, "
        f"{args.epochs} epochs per run, {args.runs} runs each, precision {args.precision}"
    )
    result = measure(args)
    print(
        f"per CPU-second (median): engine {result.engine_per_cpu_second:,.0f}, "
        f"bare {result.bare_per_cpu_second:,.0f}, "
        f"ratio {result.engine_per_cpu_second / result.bare_per_cpu_second:.3f}"
    )
    print(f"both sides in {result.precision}")
    print(f"engine: {result.engine:,.0f} samples/s (median)")
    print(f"bare:   {result.bare:,.0f} samples/s (median)")
    print(f"engine/bare = {result.ratio:.3f}")


if __name__ == "__main__":
    main()
