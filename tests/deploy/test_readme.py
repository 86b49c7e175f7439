"""README.md's console blocks, run against `make run` started the way the README starts it.

Every ```console block runs, in README order, against one stack: `make run` with ARGS for
free ports and a new state folder. Each `$` command runs in bash in the repository root and
what it prints (stdout and stderr, as a terminal shows them) must match the output the README
shows, `…` standing for what varies (``console_blocks`` says how ids and pids are read). The
README shows the default ports, ``var/local-stack`` and ``/path/to/repo``; the test reads
them as this run's.

Two blocks cannot simply run, and an HTML comment above each says so (the directives):

- ``make-run``: the block is ``make run`` itself, which runs until Ctrl-C. The test starts it
  (the fixture below) and compares what it printed by the time it was up with the block.
- ``retry``: the block shows a state reached a moment after the previous block (the
  breaker opens after three failed health checks, two seconds apart), so each command is
  run again until its output matches, for up to ``RETRY_SECONDS``.
- ``no-keep-alives``: an event stream sends a ``: keep-alive`` comment line after 15 s
  without an event, which happens or not with the machine's load; the README says so and
  leaves them out, and so does the test before it compares.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import find_free_port
from tests.deploy.console_blocks import (
    Bindings,
    Command,
    ConsoleBlock,
    OutputMismatch,
    match_output,
    read_blocks,
)
from tests.deploy.running_stack import STARTUP_SECONDS, RunningStack, user_environment

DIRECTIVES = ("make-run", "retry", "no-keep-alives")
KEEP_ALIVE = re.compile(r"^: keep-alive\n\n", re.MULTILINE)
COMMAND_SECONDS = 300.0  # the longest: an event stream that lasts until a training ends
RETRY_SECONDS = 60.0
UP_LINE = r"^Ctrl-C stops both services\.$"  # the banner's last line


@dataclass(frozen=True)
class MakeRun:
    """`make run` started for the README, and the ports and state folder it was given."""

    stack: RunningStack
    host_port: int
    backend_port: int
    state_dir: Path


@pytest.fixture
def make_run(repo_root: Path, tmp_path: Path) -> Iterator[MakeRun]:
    """`make run` as the README starts it, on free ports and with a new state folder."""
    host_port, backend_port = find_free_port(), find_free_port()
    state_dir = (tmp_path / "local-stack").resolve()
    args = f"--host-port {host_port} --backend-port {backend_port} --state-dir {state_dir}"
    # -o: never (re)build .venv here; `make test` has just made it.
    stack = RunningStack(repo_root, ["make", "-o", ".venv/.installed", "run", f"ARGS={args}"])
    try:
        stack.wait_for_line(UP_LINE, STARTUP_SECONDS)
        yield MakeRun(stack, host_port, backend_port, state_dir)
    finally:
        stack.stop()


def _here(text: str, stack: MakeRun, repo_root: Path) -> str:
    """The README's ports, state folder and checkout as this run's."""
    state = str(stack.state_dir)
    for shown, actual in (
        ("/path/to/repo/var/local-stack", state),
        ("…/var/local-stack", state),
        ("var/local-stack", state),
        ("/path/to/repo", str(repo_root)),
    ):
        text = text.replace(shown, actual)
    text = re.sub(r"\b5002\b", str(stack.host_port), text)
    return re.sub(r"\b8000\b", str(stack.backend_port), text)


def _run(command: Command, stack: MakeRun, repo_root: Path, bindings: Bindings) -> str:
    completed = subprocess.run(
        ["bash", "-c", bindings.command(_here(command.text, stack, repo_root))],
        cwd=repo_root,
        env=user_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=COMMAND_SECONDS,
        check=False,
    )
    return completed.stdout


def _check_block(block: ConsoleBlock, stack: MakeRun, repo_root: Path, bindings: Bindings) -> None:
    for command in block.commands:
        expected = _here(command.expected, stack, repo_root)
        deadline = time.monotonic() + (RETRY_SECONDS if block.directive == "retry" else 0)
        while True:
            printed = _run(command, stack, repo_root, bindings)
            if block.directive == "no-keep-alives":
                printed = KEEP_ALIVE.sub("", printed)
            try:
                match_output(expected, printed, bindings)
                break
            except OutputMismatch as exc:
                if time.monotonic() < deadline:
                    time.sleep(1.0)
                    continue
                where = f"README line {command.line}: $ {command.text}"
                raise OutputMismatch(f"{where}\n{exc}") from None


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_every_console_block_of_the_readme_prints_what_it_shows(
    make_run: MakeRun, repo_root: Path
) -> None:
    blocks = read_blocks(repo_root / "README.md")
    unknown = [(b.line, b.directive) for b in blocks if b.directive not in (None, *DIRECTIVES)]
    assert unknown == [], f"unknown readme-test directives (README line, name): {unknown}"
    first, *others = blocks
    assert first.directive == "make-run" and [c.text for c in first.commands] == ["make run"]
    assert len(others) >= 5 and all(block.commands for block in others)
    bindings = Bindings()

    expected = _here(first.commands[0].expected, make_run, repo_root)
    match_output(expected, make_run.stack.printed(), bindings)
    for block in others:
        assert block.directive != "make-run", f"README line {block.line}: make run started once"
        _check_block(block, make_run, repo_root, bindings)
