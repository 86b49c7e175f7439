"""The three commands answer --help, a bad setting and a refused address without torch.

Each case runs in a fresh interpreter (``sys.modules`` starts empty there), through the
console script's ``main`` or through ``python -m``, and reports which heavy modules loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HEAVY_MODULES = ("torch", "pandas", "sqlalchemy")

# Runs one command in this interpreter, then writes its exit code and the heavy modules it
# loaded to the file named by the first argument.
_PROBE = """
import json, runpy, sys
report, heavy_modules, how, target, *args = sys.argv[1:]
code = 0
try:
    if how == "main":
        module, _, function = target.partition(":")
        code = getattr(__import__(module, fromlist=[function]), function)(args)
    else:
        sys.argv = [target, *args]
        runpy.run_module(target, run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
heavy = [name for name in heavy_modules.split(",") if name in sys.modules]
with open(report, "w") as out:
    json.dump({"code": code, "heavy": heavy}, out)
"""


@dataclass(frozen=True)
class Start:
    """One way to start a command and what it must answer."""

    how: str  # "main" (the console script's function) or "-m" (python -m)
    target: str
    args: tuple[str, ...]
    code: int = 0
    env: dict[str, str] = field(default_factory=dict)
    stderr_has: str = ""

    def __str__(self) -> str:
        command = self.target.partition(".")[0] if self.how == "main" else f"-m {self.target}"
        settings = " ".join(f"{key}={value}" for key, value in self.env.items())
        return " ".join(part for part in (settings, command, *self.args) if part)


def bad_port_setting(cli: str, variable: str, prog: str) -> Start:
    """``serve`` with a port setting that is no number: exit 2 with one message."""
    return Start(
        "main",
        cli,
        ("serve",),
        code=2,
        env={variable: "not-a-port"},
        stderr_has=f"{prog}: invalid configuration",
    )


ENGINE = "training_engine.cli:main"
HOST = "training_host.cli:main"
PROXY = "backend_proxy.cli:main"
NO_TOKEN_PUBLIC = "refusing to listen on 0.0.0.0 without an API token"

STARTS = [
    Start("main", ENGINE, ("--help",)),
    Start("main", ENGINE, ("--version",)),
    Start("main", ENGINE, ("train", "--help")),
    Start("main", ENGINE, ("sample-data", "--help")),
    Start("-m", "training_engine", ("--help",)),
    Start(
        "main",
        ENGINE,
        ("train", "missing.yaml", "--data-dir", ".", "--models-dir", "."),
        code=2,
        stderr_has="training-engine: error:",
    ),
    Start("main", HOST, ("--help",)),
    Start("main", HOST, ("serve", "--help")),
    Start("main", HOST, ("install-service", "--help")),
    Start("main", HOST, ("uninstall-service", "--help")),
    Start("-m", "training_host", ("--help",)),
    Start("main", HOST, ("serve", "--host", "0.0.0.0"), code=2, stderr_has=NO_TOKEN_PUBLIC),
    Start("-m", "training_host", ("--host", "0.0.0.0"), code=2, stderr_has=NO_TOKEN_PUBLIC),
    bad_port_setting(HOST, "TRAINING_HOST_PORT", "training-host"),
    Start("main", PROXY, ("--help",)),
    Start("main", PROXY, ("serve", "--help")),
    Start("-m", "backend_proxy", ("--help",)),
    bad_port_setting(PROXY, "BACKEND_PORT", "backend-proxy"),
]


def _run(start: Start, tmp_path: Path) -> tuple[dict[str, Any], str]:
    report = tmp_path / "report.json"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TRAINING_HOST_", "BACKEND_"))
    }
    # An empty working directory: no config file of the checkout changes the answer.
    env.update(start.env, TRAINING_HOST_STATE_DIR=str(tmp_path / "state"))
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            _PROBE,
            str(report),
            ",".join(HEAVY_MODULES),
            start.how,
            start.target,
            *start.args,
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert report.exists(), completed.stderr
    return json.loads(report.read_text()), completed.stderr


@pytest.mark.parametrize("start", STARTS, ids=str)
def test_command_answers_without_loading_torch_pandas_or_sqlalchemy(
    start: Start, tmp_path: Path
) -> None:
    outcome, stderr = _run(start, tmp_path)
    assert outcome["code"] == start.code, stderr
    assert start.stderr_has in stderr
    assert "Traceback" not in stderr
    assert outcome["heavy"] == []


def test_the_probe_sees_torch_when_a_command_loads_it(strategies_dir: Path, tmp_path: Path) -> None:
    # Training needs torch: the same probe must report it, or the test above proves nothing.
    strategy = str(strategies_dir / "momentum_mlp.yaml")
    start = Start("main", ENGINE, ("train", strategy, "--data-dir", "no-data", "--models-dir", "."))
    outcome, stderr = _run(start, tmp_path)
    assert outcome["code"] == 2, stderr
    assert "torch" in outcome["heavy"]
