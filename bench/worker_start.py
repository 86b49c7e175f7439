"""How long a new worker process takes to be ready for a session, by start method.

A worker is ready once it has imported what a session needs (torch, pandas, the
engine): with ``spawn`` every worker is a fresh interpreter that imports them; with
``forkserver`` (the local runner's default on Linux) the fork server imports them once
and every worker after the first is forked from it. Each method starts ``--workers``
processes one after another through the runner's own context
(``training_sessions.runners.local.worker_context``); reported: the first start (it
includes the fork server's own start) and the median of the others.

    python bench/worker_start.py [--workers 6] [--methods spawn forkserver]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))


def _ready(conn: Connection) -> None:
    """A worker's start: what a session imports, then a word back."""
    import training_engine.trainer  # noqa: F401

    conn.send(os.getpid())


def start_times(method: str, workers: int) -> list[float]:
    """Seconds from Process.start() to the worker's word, for each worker in turn."""
    from training_sessions.runners.local import worker_context

    context = worker_context(method)  # type: ignore[arg-type]
    times = []
    for _ in range(workers):
        ours, theirs = context.Pipe()
        started = time.perf_counter()
        process = context.Process(target=_ready, args=(theirs,))
        process.start()
        ours.recv()
        times.append(time.perf_counter() - started)
        process.join()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--methods", nargs="+", default=["spawn", "forkserver"])
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print("| start method | first worker s | next workers s (median) |")
    print("| --- | --- | --- |")
    for method in args.methods:
        times = start_times(method, args.workers)
        print(f"| {method} | {times[0]:.2f} | {statistics.median(times[1:]):.3f} |")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
