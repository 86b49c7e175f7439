"""``training-engine``: train a strategy from the command line, or write sample data.

Exit codes: 0 done, 2 bad input (one error line, no traceback), 130 cancelled by Ctrl-C
(after a checkpoint was written).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from tqdm import tqdm

# torch and pandas load inside the commands that use them: --help and a bad strategy file
# answer without them.
from training_engine import __version__
from training_engine.cancellation import CancellationToken
from training_engine.errors import EngineError
from training_engine.job import RegressionReport, TestReport, TrainingJob, TrainingResult
from training_engine.progress import ProgressEvent
from training_engine.strategy import StrategyConfig, load_strategy, with_overrides

EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 130
PROG = "training-engine"


PHASE_LINES: dict[str, str] = {
    "loading_data": "loading data and computing features...",
    "training": "training...",
    "evaluating": "evaluating on the test part...",
    "saving": "saving the model...",
}


class ProgressBar:
    """Renders progress events as lines (phases, resume, epochs) and one tqdm bar of batches.

    The bar is drawn only when ``enabled`` and stderr is a terminal: in a log file or a
    pipe its redraws would be noise; the lines are written either way.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.bar: tqdm[Any] | None = None

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind == "phase" and event.phase is not None:
            tqdm.write(PHASE_LINES[event.phase])
        elif event.kind == "started":
            if (event.epoch, event.batch) != (1, 0):
                tqdm.write(f"resumed at epoch {event.epoch}, batch {event.batch}")
            self.bar = tqdm(
                total=event.total_epochs * event.total_batches,
                initial=(event.epoch - 1) * event.total_batches + event.batch,
                unit="batch",
                disable=not self.enabled,
                dynamic_ncols=True,
            )
        elif self.bar is None:
            return
        elif event.kind == "batch":
            self.bar.update(1)
            self.bar.set_postfix(
                epoch=f"{event.epoch}/{event.total_epochs}",
                loss=f"{event.train_loss:.4f}",
                refresh=False,
            )
        elif event.kind == "epoch":
            self.bar.write(
                f"epoch {event.epoch}/{event.total_epochs}: train loss {event.train_loss:.4f}, "
                f"val loss {event.val_loss:.4f}, val acc {event.val_accuracy:.3f}, "
                f"lr {event.learning_rate:.2e}, {event.samples_per_second:,.0f} samples/s"
            )
        elif event.kind == "finished":
            self.bar.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train trading strategies with the one training engine, on the CPU or a GPU.",
        epilog="Run '%(prog)s COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train_parser = commands.add_parser(
        "train",
        help="train a strategy file and save the model",
        description=(
            "Train the model a KTRDR-format strategy file describes on OHLCV files "
            "({data-dir}/{SYMBOL}_{TIMEFRAME}.csv or .parquet), evaluate it on the test part "
            "against a majority-class baseline and save it under "
            "{models-dir}/{strategy}/{SYMBOLS}_{timeframe}_v{N}/. Ctrl-C stops after the "
            "current batch and writes a checkpoint to resume from with --resume."
        ),
    )
    train_parser.add_argument("strategy", type=Path, metavar="STRATEGY.yaml")
    train_parser.add_argument("--data-dir", type=Path, required=True, help="folder of OHLCV files")
    train_parser.add_argument(
        "--models-dir", type=Path, required=True, help="where the trained model folder goes"
    )
    train_parser.add_argument("--symbols", nargs="+", help="train on these symbols instead")
    train_parser.add_argument(
        "--timeframes",
        "--timeframe",
        nargs="+",
        dest="timeframes",
        help="use these timeframes instead (the first is the base unless the file's base is one)",
    )
    train_parser.add_argument("--epochs", type=int, help="number of epochs (overrides the file)")
    train_parser.add_argument(
        "--device", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps"
    )
    train_parser.add_argument("--seed", type=int, help="random seed (overrides the file)")
    train_parser.add_argument("--start-date", help="first bar to use, e.g. 2024-01-01")
    train_parser.add_argument("--end-date", help="last bar to use")
    train_parser.add_argument(
        "--resume", type=Path, metavar="CHECKPOINT", help="continue a stopped run"
    )
    train_parser.add_argument(
        "--checkpoint",
        type=Path,
        metavar="PATH",
        help="checkpoint file (default: the --resume file, else "
        "{models-dir}/{strategy}/{SYMBOLS}_{timeframe}.checkpoint.pt)",
    )
    train_parser.add_argument("--quiet", action="store_true", help="no progress bar")
    train_parser.set_defaults(handler=run_train)

    sample_parser = commands.add_parser(
        "sample-data",
        help="write generated OHLCV files to train on",
        description=(
            "Write deterministic generated OHLCV files ({out}/{SYMBOL}_{TIMEFRAME}.csv) with "
            "learnable structure, so everything runs without downloads."
        ),
    )
    sample_parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    sample_parser.add_argument(
        "--symbols", nargs="+", default=["AAPL", "MSFT", "EURUSD"], help="default: %(default)s"
    )
    sample_parser.add_argument(
        "--timeframes",
        nargs="+",
        default=["1h", "4h", "1d"],
        help="multiples of 1h; default: %(default)s",
    )
    sample_parser.add_argument(
        "--bars", type=int, default=3000, help="hourly bars per symbol (default %(default)s)"
    )
    sample_parser.add_argument("--seed", type=int, default=7, help="default %(default)s")
    sample_parser.add_argument(
        "--format", choices=["csv", "parquet"], default="csv", help="default %(default)s"
    )
    sample_parser.add_argument(
        "--context",
        action="store_true",
        help="also write context series (context_data): GBPUSD_1h, FRED DGS2 and DGS10, "
        "CFTC cot_EUR",
    )
    sample_parser.set_defaults(handler=run_sample_data)
    return parser


def _job_from_args(args: argparse.Namespace) -> TrainingJob:
    strategy: StrategyConfig = load_strategy(args.strategy)
    overrides = {
        key: value
        for key, value in (("epochs", args.epochs), ("device", args.device), ("seed", args.seed))
        if value is not None
    }
    strategy = with_overrides(
        strategy, training=overrides, symbols=args.symbols, timeframes=args.timeframes
    )
    from training_engine.artifacts import artifact_prefix

    prefix = artifact_prefix(strategy.symbols, strategy.base_timeframe)
    checkpoint = (
        args.checkpoint
        or args.resume
        or args.models_dir / strategy.name / f"{prefix}.checkpoint.pt"
    )
    return TrainingJob(
        strategy=strategy,
        data_dir=args.data_dir,
        models_dir=args.models_dir,
        checkpoint_path=checkpoint,
        start_date=args.start_date,
        end_date=args.end_date,
        resume_from=args.resume,
    )


def run_train(args: argparse.Namespace) -> int:
    """Train with a progress bar; Ctrl-C cancels after the current batch."""
    job = _job_from_args(args)
    from training_engine.trainer import train

    token = CancellationToken()

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        # A second Ctrl-C falls back to the default: stop at once, without a checkpoint.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        token.cancel("interrupted")
        print("\nstopping after the current batch (Ctrl-C again to abort)...", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        result = train(job, cancel=token, on_progress=ProgressBar(enabled=not args.quiet))
    finally:
        signal.signal(signal.SIGINT, previous)
    _print_summary(result, job)
    return 0 if result.status == "completed" else EXIT_CANCELLED


def _print_summary(result: TrainingResult, job: TrainingJob) -> None:
    if result.status == "cancelled":
        print(f"cancelled after {result.epochs_completed}/{result.total_epochs} epochs")
        print(f"checkpoint: {result.checkpoint_path}")
        print(f"resume: run the same command with --resume {result.checkpoint_path}")
        return
    stopped = " (stopped early)" if result.stopped_early else ""
    print(
        f"completed {result.epochs_completed}/{result.total_epochs} epochs{stopped} "
        f"on {result.device}"
    )
    if result.test_metrics is not None and result.baseline_metrics is not None:
        print(_metrics_line("test", result.test_metrics))
        baseline = result.baseline_metrics
        regression = isinstance(baseline, RegressionReport)
        print(_metrics_line("mean baseline" if regression else "majority baseline", baseline))
    # Whether the model beats its baselines is the evaluation's verdict (one rule for classes
    # and regression targets, docs/evaluation.md), printed with the rest of the evaluation.
    from training_engine.run_report import evaluation_lines  # loads pandas

    for line in evaluation_lines(result.evaluation):
        print(line)
    print(f"model: {result.model_path}")
    if result.ktrdr_model_path is not None:
        print(f"KTRDR's copy: {result.ktrdr_model_path}")
    if result.ktrdr_error is not None:
        print(f"KTRDR's copy: {result.ktrdr_error}")
    if result.ktrdr_unsupported is not None:
        print(f"KTRDR's backtester cannot run it: {result.ktrdr_unsupported}")


def _metrics_line(label: str, report: TestReport) -> str:
    if isinstance(report, RegressionReport):
        return (
            f"{label:>17}: R2 {report.r2:.3f}, MAE {report.mae:.5f}, "
            f"directional accuracy {report.directional_accuracy:.3f}"
        )
    return f"{label:>17}: accuracy {report.accuracy:.3f}, macro-F1 {report.macro_f1:.3f}"


def run_sample_data(args: argparse.Namespace) -> int:
    """Write the generated files and list them."""
    from training_engine.sample_data import write_context_sample_data, write_sample_data

    try:
        paths = write_sample_data(
            args.out,
            symbols=tuple(args.symbols),
            timeframes=tuple(args.timeframes),
            bars=args.bars,
            seed=args.seed,
            fmt=args.format,
        )
        if args.context:
            paths += write_context_sample_data(
                args.out, bars=args.bars, seed=args.seed, fmt=args.format
            )
    except ValueError as exc:
        # write_sample_data reports bad arguments (bars < 1, odd timeframes) as ValueError.
        raise _BadInputError(str(exc)) from exc
    print(f"wrote {len(paths)} files to {args.out}:")
    for path in paths:
        print(f"  {path.name}")
    return 0


class _BadInputError(Exception):
    """A CLI argument the engine cannot use."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``training-engine`` console script."""
    logging.basicConfig(level=logging.WARNING, format=f"{PROG}: warning: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except (EngineError, _BadInputError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return code


if __name__ == "__main__":
    sys.exit(main())
