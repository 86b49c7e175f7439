"""`make run`: the whole system on one machine, no Docker.

Starts the training host service (:5002, its home in var/local-stack/host/) and the backend
(:8000, proxying to it) as child processes with embedded SQLite and generated sample data
under var/local-stack/, waits until
both answer /health, prints the URLs and a curl that starts a training, streams their logs
(prefixed, and copied to var/local-stack/logs/; successful health checks only in the copies
unless --show-health-checks), and on Ctrl-C or SIGTERM stops both: SIGTERM to each child by its
pid, a grace period for sessions to checkpoint, then SIGKILL.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = REPO_ROOT / "var" / "local-stack"
# The host gives running sessions this long to checkpoint (stop_grace_seconds is 30) before
# it ends their workers; past it, the child is killed.
STOP_GRACE_SECONDS = 45.0
# A successful health check, as the host's access log and the backend's HTTP client log it:
# the backend asks the host every 2 s and this script asks both while they start, which
# would be a line pair every 2 s in the stream (failed checks still show).
HEALTH_CHECK_LINE = re.compile(
    r'"GET /health HTTP/[\d.]+" 2\d\d |HTTP Request: GET \S+/health "HTTP/[\d.]+ 2\d\d '
)


class StackError(Exception):
    """The local stack cannot start; the message says which part and why."""


@dataclass
class Child:
    """One service process and the thread copying its output."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    hidden: re.Pattern[str] | None = None  # lines copied to the log file but not streamed
    pump: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self.pump = threading.Thread(target=self._copy_output, name=f"{self.name}-log", daemon=True)
        self.pump.start()

    def _copy_output(self) -> None:
        assert self.process.stdout is not None
        prefix = f"[{self.name}] "
        with self.log_path.open("ab") as log:
            for line in iter(self.process.stdout.readline, b""):
                log.write(line)
                log.flush()
                text = line.decode("utf-8", "replace")
                if self.hidden is None or not self.hidden.search(text):
                    sys.stdout.write(prefix + text)
                    sys.stdout.flush()

    def stop(self, grace_seconds: float) -> int:
        """SIGTERM, wait up to `grace_seconds`, then SIGKILL; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                print(
                    f"{self.name} did not stop in {grace_seconds:.0f} s; killing pid "
                    f"{self.process.pid}",
                    flush=True,
                )
                self.process.kill()
                self.process.wait()
        self.pump.join(timeout=5)
        return self.process.returncode


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="local_stack.py",
        description="Run the training host service and the backend locally (no Docker): "
        "SQLite state and generated sample data under --state-dir, logs streamed here and "
        "copied to <state-dir>/logs/. Ctrl-C stops both.",
    )
    parser.add_argument("--host-port", type=int, default=5002, help="host service port (5002)")
    parser.add_argument("--backend-port", type=int, default=8000, help="backend port (8000)")
    parser.add_argument(
        "--no-host",
        action="store_true",
        help="start the backend alone: every training falls back to CPU in the backend",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="databases, data, models, checkpoints and logs (default: var/local-stack)",
    )
    parser.add_argument(
        "--show-health-checks",
        action="store_true",
        help="stream the successful GET /health lines too (by default only the log files "
        "under <state-dir>/logs/ keep them)",
    )
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=180.0,
        help="seconds to wait for each /health (default: 180; torch is slow to import)",
    )
    args = parser.parse_args(argv)
    for option in ("host_port", "backend_port"):
        if not 1 <= getattr(args, option) <= 65535:
            parser.error(f"--{option.replace('_', '-')} must be a port number (1-65535)")
    if args.host_port == args.backend_port:
        parser.error("--host-port and --backend-port must differ")
    args.state_dir = args.state_dir.resolve()
    return args


def ensure_sample_data(data_dir: Path) -> None:
    """Write the engine's sample market data unless the folder already has some."""
    if any(data_dir.glob("*_*.csv")) or any(data_dir.glob("*_*.parquet")):
        return
    from training_engine.sample_data import write_sample_data

    print(f"Writing sample market data to {data_dir} ...", flush=True)
    written = write_sample_data(data_dir)
    print(f"  {len(written)} files ({', '.join(p.name for p in written[:3])}, ...)", flush=True)


def host_home(args: argparse.Namespace) -> Path:
    """The host service's home: its state, data, models, checkpoints, logs and strategies."""
    home: Path = args.state_dir / "host"
    return home


def ensure_strategies(strategies_dir: Path) -> None:
    """Copy the repository's example strategies into the host's home unless it has some."""
    strategies_dir.mkdir(parents=True, exist_ok=True)
    if any(strategies_dir.glob("*.yaml")):
        return
    for source in sorted((REPO_ROOT / "config" / "strategies").glob("*.yaml")):
        shutil.copy2(source, strategies_dir / source.name)


def host_command(args: argparse.Namespace) -> list[str]:
    """The host service's command line: everything it needs is under its home."""
    return [
        sys.executable,
        "-m",
        "training_host",
        "serve",
        "--home",
        str(host_home(args)),
        "--host",
        "127.0.0.1",
        "--port",
        str(args.host_port),
    ]


def restart_command(args: argparse.Namespace) -> str:
    """One copy-pasteable shell line that starts the host service again, as started here."""
    return f"cd {shlex.quote(str(REPO_ROOT))} && {shlex.join(host_command(args))}"


def backend_environment(args: argparse.Namespace) -> dict[str, str]:
    """BACKEND_* settings: same data and models as the host, its own database."""
    state = args.state_dir
    environment = {
        "USE_TRAINING_HOST_SERVICE": "true",
        "TRAINING_HOST_SERVICE_URL": f"http://127.0.0.1:{args.host_port}",
        "BACKEND_HOST": "127.0.0.1",
        "BACKEND_PORT": str(args.backend_port),
        "BACKEND_DATABASE_URL": f"sqlite:///{state / 'backend' / 'backend.db'}",
        "BACKEND_DATA_DIR": str(host_home(args) / "data"),
        "BACKEND_MODELS_DIR": str(state / "models"),
        "BACKEND_CHECKPOINTS_DIR": str(state / "backend" / "checkpoints"),
        "BACKEND_LOG_DIR": str(state / "backend" / "logs"),
        "BACKEND_STRATEGIES_DIR": str(REPO_ROOT / "config" / "strategies"),
        # Notice a stopped or restarted host within seconds, for the demo.
        "BACKEND_HEALTH_CHECK_INTERVAL_SECONDS": "2",
        "BACKEND_BREAKER_RECOVERY_TIMEOUT_SECONDS": "10",
    }
    token = os.environ.get("TRAINING_HOST_API_TOKEN")
    if token:
        environment["BACKEND_HOST_API_TOKEN"] = token
    return environment


def backend_command(args: argparse.Namespace) -> list[str]:
    port = str(args.backend_port)
    return [
        sys.executable,
        "-m",
        "backend_proxy.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        port,
    ]


def start_child(
    name: str,
    command: list[str],
    env: dict[str, str],
    log_dir: Path,
    hidden: re.Pattern[str] | None = None,
) -> Child:
    """Start `command` with `env` added; its lines matching `hidden` go to its log file only."""
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        # Own process group: a terminal Ctrl-C reaches only this script, which then stops the
        # children in order instead of them racing to shut down on their own.
        start_new_session=True,
    )
    child = Child(name, process, log_dir / f"{name}.log", hidden)
    print(f"{name}: pid {process.pid}, log {child.log_path}", flush=True)
    return child


def wait_for_health(
    name: str, process: subprocess.Popen[bytes], url: str, timeout: float, stop: threading.Event
) -> None:
    """Poll `url` until it answers 200; fail when `process` exits or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        if process.poll() is not None:
            raise StackError(
                f"{name} exited with status {process.returncode} before answering {url}"
            )
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass  # not listening yet
        stop.wait(0.3)
    if not stop.is_set():
        raise StackError(f"{name} did not answer {url} within {timeout:.0f} s")


def print_banner(args: argparse.Namespace, host_pid: int | None) -> None:
    backend = f"http://127.0.0.1:{args.backend_port}"
    body = '{"symbol": "AAPL", "timeframe": "1h", "config": {"epochs": 3}}'
    lines = ["", "Local stack is up."]
    if not args.no_host:
        lines.append(f"  training host: http://127.0.0.1:{args.host_port}  (docs: /docs)")
    lines += [
        f"  backend:       {backend}  (docs: /docs)",
        "",
        "Start a training through the backend:",
        f"  curl -s -X POST {backend}/api/trainings/start "
        f"-H 'content-type: application/json' -d '{body}'",
        "Then, with the training_id it returns:",
        f"  curl -s {backend}/api/trainings/<training_id>/status",
        f"  curl -N {backend}/api/trainings/<training_id>/events   # live, until it ends",
        f"  curl -s {backend}/api/trainings/<training_id>/logs?tail=20",
        f"  curl -s {backend}/api/trainings/<training_id>/performance",
        f"  curl -s -X POST {backend}/api/trainings/<training_id>/stop",
        f"  curl -s {backend}/api/training-host/status",
        "",
    ]
    if host_pid is not None:
        lines += [
            f"See the fallback: stop the host (kill {host_pid}) and start another training.",
            "Start the host again (in another terminal) with:",
            f"  {restart_command(args)}",
            "",
        ]
    if not args.show_health_checks:
        lines += [
            "Successful health checks (GET /health) are left out of the lines below; the logs",
            f"in {args.state_dir / 'logs'} keep them (--show-health-checks streams them).",
            "",
        ]
    lines += [
        "Ctrl-C stops both services.",
        "",
    ]
    print("\n".join(lines), flush=True)


def run(args: argparse.Namespace) -> int:
    """Start everything, wait for a signal or a child's death, stop everything."""
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    log_dir = args.state_dir / "logs"
    for folder in (log_dir, args.state_dir / "host", args.state_dir / "backend"):
        folder.mkdir(parents=True, exist_ok=True)
    ensure_sample_data(host_home(args) / "data")
    ensure_strategies(host_home(args) / "strategies")

    children: list[Child] = []
    host: Child | None = None
    status = 0
    hidden = None if args.show_health_checks else HEALTH_CHECK_LINE
    try:
        if not args.no_host:
            host = start_child("host", host_command(args), {}, log_dir, hidden)
            children.append(host)
        backend = start_child(
            "backend", backend_command(args), backend_environment(args), log_dir, hidden
        )
        children.append(backend)
        for child, port in zip(
            children, ([] if args.no_host else [args.host_port]) + [args.backend_port], strict=True
        ):
            url = f"http://127.0.0.1:{port}/health"
            wait_for_health(child.name, child.process, url, args.startup_timeout, stop)
        if not stop.is_set():
            print_banner(args, None if host is None else host.process.pid)
        host_reported = False
        while not stop.wait(0.5):
            if backend.process.poll() is not None:
                raise StackError(f"backend exited with status {backend.process.returncode}")
            if host is not None and not host_reported and host.process.poll() is not None:
                # Stopping the host is how a user sees the fallback: keep the backend up.
                host_reported = True
                print(
                    f"host exited (status {host.process.returncode}); the backend keeps "
                    "running and trains on CPU itself. Ctrl-C stops it.",
                    flush=True,
                )
    except StackError as exc:
        print(f"local_stack: error: {exc}; logs in {log_dir}", file=sys.stderr, flush=True)
        status = 1
    finally:
        if children:
            print(
                "Stopping: " + ", ".join(f"{c.name} (pid {c.process.pid})" for c in children),
                flush=True,
            )
        # Backend first, so it does not spend the host's shutdown tripping its breaker.
        for child in reversed(children):
            code = child.stop(STOP_GRACE_SECONDS)
            # uvicorn re-raises the SIGTERM after its clean shutdown, hence a negative status.
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
            print(f"{child.name} stopped ({how})", flush=True)
    if received and status == 0:
        print("Stopped.", flush=True)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
