"""The one script a GPU session runs end to end; its figures go into docs/benchmarks.md.

Steps, each reported as it finishes (a failing step is recorded and the next one runs):

1. the device: torch, the card's name, compute capability, memory, NVML's view of it;
2. the GPU tests: ``pytest -m "gpu or mps"`` (tests/engine/test_gpu_training.py and
   the others marked so), counted;
3. resume: each model stopped mid-epoch and resumed, compared weight by weight with the
   run left alone (``deterministic`` in fp32, bf16 and fp16; and one run without it);
4. throughput: ``bench/engine_throughput.py`` in off, bf16 and fp16, the engine and the
   bare loop in the same precision, synchronised;
5. memory: the engine's estimate of each model's run beside the peak it measured;
6. sessions: 1, 2 and 4 sessions at once through the session runtime (real workers) on
   this host's GPUs: wall time, sessions per minute, the cards they were placed on.

    python bench/gpu_check.py                  # on a CUDA or MPS machine: writes the docs
    python bench/gpu_check.py --cpu            # a dry run on the CPU, tiny sizes, no docs

The section between the ``gpu-check`` markers of docs/benchmarks.md is replaced only by a
run on a GPU (or with ``--out``); a CPU run prints it.
"""

from __future__ import annotations

import argparse
import platform
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import engine_throughput  # noqa: E402  (bench/, beside this file)
import torch  # noqa: E402
from training_engine.device import describe_devices, device_name, resolve_device  # noqa: E402
from training_engine.device_memory import estimate_memory  # noqa: E402
from training_engine.device_probe import current_probe  # noqa: E402
from training_engine.models import build_model  # noqa: E402
from training_engine.sample_data import write_sample_data  # noqa: E402
from training_engine.trainer import fit  # noqa: E402

from tests.engine.resume_cases import differing_weights, stop_and_resume  # noqa: E402
from tests.engine.synthetic import make_dataset, make_strategy  # noqa: E402

DOCS = REPO_ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- gpu-check:begin -->", "<!-- gpu-check:end -->"
MODELS: dict[str, dict[str, Any]] = {
    "mlp": {},
    "lstm": {"type": "lstm", "hidden_layers": [64]},
    "gru": {"type": "gru", "hidden_layers": [64], "num_layers": 2},
    "transformer": {"type": "transformer", "hidden_layers": [64], "num_heads": 4},
}


@dataclass(frozen=True, slots=True)
class Sizes:
    """How big each step is: the GPU run's, or the CPU dry run's."""

    resume_samples: int
    bench_samples: int
    bench_epochs: int
    bench_runs: int
    memory_samples: int
    session_epochs: int
    session_counts: tuple[int, ...]


GPU_SIZES = Sizes(2048, 200_000, 2, 3, 50_000, 20, (1, 2, 4))
CPU_SIZES = Sizes(320, 20_000, 1, 1, 2_000, 1, (1, 2))


@dataclass(slots=True)
class Report:
    """The markdown written at the end, and whether every step passed."""

    lines: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def add(self, *lines: str) -> None:
        for line in lines:
            print(line, flush=True)
        self.lines.extend(lines)

    def step(self, title: str, run: Callable[[], None]) -> None:
        self.add("", f"### {title}", "")
        started = time.perf_counter()
        try:
            run()
        except Exception as exc:  # a failed step is a finding; the others still run
            traceback.print_exc()
            self.failed.append(title)
            self.add(f"**FAILED**: `{type(exc).__name__}: {str(exc).splitlines()[0][:300]}`")
        self.add("", f"({time.perf_counter() - started:.0f} s)")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Run the GPU checks end to end (GPU tests, CUDA resume cases, the throughput bench "
            "in off/bf16/fp16, memory estimates, several sessions per GPU) and write the "
            "figures with the GPU's name into docs/benchmarks.md."
        )
    )
    parser.add_argument(
        "--cpu", action="store_true", help="dry run on the CPU with tiny sizes (docs untouched)"
    )
    parser.add_argument("--device", default="auto", help="the device to check (default: auto)")
    parser.add_argument(
        "--out", type=Path, help="write the section to this file instead (or also, on a CPU run)"
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["tests", "resume", "bench", "memory", "sessions"],
    )
    return parser.parse_args()


def step_device(report: Report, device: torch.device) -> None:
    probe = current_probe()
    report.add(
        f"- torch {torch.__version__}, Python {platform.python_version()}, "
        f"{platform.platform(terse=True)}",
        f"- training device: `{device_name(device)}`",
    )
    for info in describe_devices(probe):
        capability = (
            f", compute capability {info.capability[0]}.{info.capability[1]}"
            if info.capability
            else ""
        )
        total = f", {info.total_memory_bytes / 1024**3:.1f} GiB" if info.total_memory_bytes else ""
        report.add(f"- `{info.device}`: **{info.name}**{capability}{total}, uuid {info.uuid}")
    cards = probe.nvml_cards()
    report.add(
        "- NVML: "
        + (
            "not available"
            if cards is None
            else ", ".join(
                f"{c.name} ({c.uuid}, {c.used_memory_bytes / 1024**3:.1f} GiB used)" for c in cards
            )
        )
    )


def step_tests(report: Report, device: torch.device) -> None:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "gpu or mps",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests",
    ]
    completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=3600)
    summary = [
        line
        for line in completed.stdout.splitlines()
        if re.search(r"\d+ (passed|skipped|failed|error)", line)
    ]
    failures = [
        line for line in completed.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))
    ]
    report.add(f'`pytest -m "gpu or mps"`: {summary[-1] if summary else completed.stdout[-300:]}')
    report.add(*[f"- {line}" for line in failures[:30]])
    if completed.returncode not in (0, 5):  # 5: nothing collected
        raise RuntimeError(f"pytest exited {completed.returncode}")


def step_resume(report: Report, device: torch.device, sizes: Sizes) -> None:
    report.add(
        "Stopped after batch 4 of epoch 2, resumed from the checkpoint, compared with the run "
        "left alone (`torch.equal` on every weight).",
        "",
        "| model | precision | deterministic | bit-identical | largest difference |",
        "|---|---|---|---|---|",
    )
    cases = [(name, precision, True) for name in MODELS for precision in ("off", "bf16", "fp16")]
    cases += [("mlp", "off", False), ("lstm", "off", False)]
    data = make_dataset(n_train=sizes.resume_samples)
    mismatches = 0
    for name, precision, deterministic in cases:
        strategy = make_strategy(
            MODELS[name],
            epochs=2,
            device=str(device),
            mixed_precision=precision,
            deterministic=deterministic,
            early_stopping={"enabled": False},
        )
        with tempfile.TemporaryDirectory() as folder:
            alone, resumed = stop_and_resume(data, strategy, Path(folder), 2, 4)
        differing = differing_weights(alone.model, resumed.model)
        worst = max(differing.values(), default=0.0)
        mismatches += bool(differing) and deterministic
        same = "yes" if not differing else "no"
        report.add(f"| {name} | {precision} | {deterministic} | {same} | {worst:.3g} |")
    if mismatches:
        raise RuntimeError(f"{mismatches} deterministic case(s) did not resume bit-identical")


def step_bench(report: Report, device: torch.device, sizes: Sizes) -> None:
    report.add(
        f"`bench/engine_throughput.py --device {device_name(device)} "
        f"--samples {sizes.bench_samples} --epochs {sizes.bench_epochs} "
        f"--runs {sizes.bench_runs} --precision P`: MLP 64-128-128-3, batch 256, both sides "
        "in the same precision, synchronised.",
        "",
        "| precision asked | runs in | engine (samples/s) | bare (samples/s) | engine/bare |",
        "|---|---|---|---|---|",
    )
    for precision in engine_throughput.PRECISIONS:
        args = engine_throughput.build_parser().parse_args(
            [
                "--device",
                device_name(device),
                "--samples",
                str(sizes.bench_samples),
                "--epochs",
                str(sizes.bench_epochs),
                "--runs",
                str(sizes.bench_runs),
                "--precision",
                precision,
            ]
        )
        result = engine_throughput.measure(args, report=lambda line: print("  " + line))
        report.add(
            f"| {precision} | {result.precision} | {result.engine:,.0f} | {result.bare:,.0f} | "
            f"**{result.ratio:.3f}** |"
        )


def step_memory(report: Report, device: torch.device, sizes: Sizes) -> None:
    report.add(
        f"{sizes.memory_samples} windows of 24 bars x 16 features, batch 256, Adam, fp32: the "
        "estimate the engine checks before a run, and the peak the allocator saw.",
        "",
        "| model | estimate (MiB) | measured peak (MiB) | estimate / peak |",
        "|---|---|---|---|",
    )
    data = make_dataset(n_train=sizes.memory_samples, lookback=24, n_features=16)
    for name, model in MODELS.items():
        strategy = make_strategy(
            {"hidden_layers": [128, 64], **model} if name == "mlp" else model,
            epochs=1,
            batch_size=256,
            device=str(device),
            mixed_precision="off",
        )
        network = build_model(strategy.model, data.n_features, data.lookback, 3)
        estimate = estimate_memory(data, network, strategy.model, strategy.training).needed()
        peak = _peak_of(lambda strategy=strategy: fit(data, strategy), device)
        measured = f"{peak / 1024**2:,.1f}" if peak else "n/a"
        ratio = f"{estimate / peak:.2f}" if peak else "n/a"
        report.add(f"| {name} | {estimate / 1024**2:,.1f} | {measured} | {ratio} |")


def _peak_of(run: Callable[[], object], device: torch.device) -> int | None:
    if device.type != "cuda":
        run()
        return None  # MPS and the CPU keep no peak
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    run()
    torch.cuda.synchronize(device)
    return int(torch.cuda.max_memory_allocated(device) - base)


def step_sessions(report: Report, device: torch.device, sizes: Sizes) -> None:
    from training_sessions.service import SessionService
    from training_sessions.types import RuntimeSettings, TrainingRequest

    # An LSTM where CUDA trains it; on a Mac, auto keeps LSTMs on the CPU: an MLP there.
    strategy = "trend_lstm" if device.type == "cuda" else "momentum_mlp"
    report.add(
        f"`{strategy}` on the sample data, {sizes.session_epochs} epochs each, device "
        f"`{'auto' if device.type != 'cpu' else 'cpu'}`: N sessions submitted at once to the "
        "session runtime (real worker processes, `max_concurrent_jobs` N).",
        "",
        "| sessions | wall (s) | sessions/min | per-session wall (s) | cards used "
        "| peak MiB per session |",
        "|---|---|---|---|---|---|",
    )
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_sample_data(root / "data")
        for count in sizes.session_counts:
            settings = RuntimeSettings(
                database_url=f"sqlite:///{root}/sessions-{count}.db",
                data_dir=root / "data",
                models_dir=root / f"models-{count}",
                strategies_dir=REPO_ROOT / "config" / "strategies",
                checkpoints_dir=root / f"checkpoints-{count}",
                default_device="auto" if device.type != "cpu" else "cpu",
                max_concurrent_jobs=count,
                log_dir=root / f"logs-{count}",
            )
            manager = SessionService(settings)
            manager.start()
            try:
                config = {"epochs": sizes.session_epochs, "early_stopping": {"enabled": False}}
                started = time.perf_counter()
                views = [
                    manager.submit(TrainingRequest(strategy=strategy, config=config))[0]
                    for _ in range(count)
                ]
                peaks: dict[str, int] = {}
                while any(
                    manager.get(v.training_id).status in {"queued", "running"} for v in views
                ):
                    for training_id, memory in manager.device_memory().items():
                        peaks[training_id] = max(
                            peaks.get(training_id, 0),
                            memory.peak_allocated_bytes or memory.allocated_bytes,
                        )
                    time.sleep(0.2)
                wall = time.perf_counter() - started
                done = [manager.get(v.training_id) for v in views]
                failed = [d.error for d in done if d.status != "completed"]
                if failed:
                    raise RuntimeError(f"{len(failed)} session(s) did not complete: {failed[0]}")
                walls = [
                    (d.finished_at - d.started_at).total_seconds()
                    for d in done
                    if d.finished_at and d.started_at
                ]
                cards = {
                    match[1]
                    for v in views
                    for match in [
                        re.search(r"CUDA_VISIBLE_DEVICES=(GPU-[\w-]+)", manager.log(v.training_id))
                    ]
                    if match
                }
                peak = f"{max(peaks.values()) / 1024**2:,.0f}" if peaks else "n/a"
                report.add(
                    f"| {count} | {wall:.1f} | {60 * count / wall:.2f} | "
                    f"{sum(walls) / len(walls):.1f} | {len(cards) or 'inherited'} | {peak} |"
                )
            finally:
                manager.shutdown(grace_seconds=10.0)


def write_section(report: Report, device: torch.device, out: Path | None, cpu: bool) -> None:
    names = (
        ", ".join(f"{d.name} (`{d.device}`)" for d in describe_devices()) or "no GPU (CPU dry run)"
    )
    section = [
        BEGIN,
        f"## GPU check (`bench/gpu_check.py`): {names}",
        "",
        f"Run {time.strftime('%Y-%m-%d')} on {platform.node() or 'this machine'}; "
        + (
            "all steps passed."
            if not report.failed
            else f"failed steps: {', '.join(report.failed)}."
        ),
        *report.lines,
        END,
    ]
    text = "\n".join(section) + "\n"
    targets = [out] if out is not None else ([] if cpu else [DOCS])
    for target in targets:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if BEGIN in current and END in current:
            head, rest = current.split(BEGIN, 1)
            updated = head + text + rest.split(END, 1)[1].lstrip("\n")
        else:
            updated = current + ("\n" if current and not current.endswith("\n") else "") + text
        target.write_text(updated, encoding="utf-8")
        print(f"wrote the GPU check section to {target}")


def main() -> int:
    args = parse_args()
    device = resolve_device("cpu" if args.cpu else args.device)
    if device.type == "cpu" and not args.cpu:
        print("no GPU here: run with --cpu for a dry run on the CPU", file=sys.stderr)
        return 2
    sizes = CPU_SIZES if args.cpu else GPU_SIZES
    report = Report()
    report.step("Device", lambda: step_device(report, device))
    steps: dict[str, tuple[str, Callable[[], None]]] = {
        "tests": ("GPU tests", lambda: step_tests(report, device)),
        "resume": ("Stop and resume", lambda: step_resume(report, device, sizes)),
        "bench": ("Throughput, engine vs bare loop", lambda: step_bench(report, device, sizes)),
        "memory": ("Memory estimate vs measured", lambda: step_memory(report, device, sizes)),
        "sessions": ("Several sessions per GPU", lambda: step_sessions(report, device, sizes)),
    }
    for key, (title, run) in steps.items():
        if key not in args.skip:
            report.step(title, run)
    write_section(report, device, args.out, args.cpu)
    if report.failed:
        print(f"FAILED steps: {', '.join(report.failed)}", file=sys.stderr)
        return 1
    print("every step passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
