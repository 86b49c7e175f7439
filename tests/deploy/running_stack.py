"""The local stack (`make run`, deploy/local_stack.py) as a user runs it, for the deploy tests."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

from tests.fixtures.waiting import WaitTimeout, wait_until

STARTUP_SECONDS = 180.0
# local_stack.py gives each of its two services 45 s to stop before it kills them, then
# joins their output threads: about 100 s at worst, more on a machine busy with other tests.
STOP_SECONDS = 240.0


def user_environment() -> dict[str, str]:
    """This environment less the host's own settings, which a user's shell would not have."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TRAINING_HOST_")}


class RunningStack:
    """A command that runs the stack, in its own process group, its output read line by line."""

    def __init__(self, repo_root: Path, command: Sequence[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.process = subprocess.Popen(
            list(command),
            cwd=repo_root,
            env=user_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # make and the script it starts: stopped together
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put("")  # end of output

    def wait_for_line(self, pattern: str, timeout: float = STARTUP_SECONDS) -> re.Match[str]:
        """The next line matching ``pattern``; the lines before it are kept in ``output``."""

        def next_match() -> re.Match[str] | None:
            try:
                line = self.lines.get(timeout=1.0)
            except queue.Empty:
                return None
            if line == "":
                raise WaitTimeout(f"output ended before {pattern!r}")
            self.output.append(line)
            return re.search(pattern, line)

        try:
            return wait_until(next_match, timeout, f"a line matching {pattern!r}", interval=0)
        except WaitTimeout as exc:
            raise AssertionError(f"{exc}; output:\n{self.printed()}") from None

    def printed(self) -> str:
        """Everything read so far."""
        return "".join(self.output)

    def child_pids(self) -> dict[str, int]:
        return {
            m.group(1): int(m.group(2))
            for line in self.output
            if (m := re.match(r"^(host|backend): pid (\d+)", line))
        }

    def stop(self) -> None:
        """SIGINT to the group, as Ctrl-C in a terminal sends it (make and the script alike),
        so the script stops its own services.

        Raises:
            AssertionError: it did not stop in time; then it and the services it started
                (each in a process group of its own) are killed first.
        """
        _signal_group(self.process.pid, signal.SIGINT)

        def stopped() -> bool:  # poll() reaps the leader, which the group holds until then
            return self.process.poll() is not None and _group_is_gone(self.process.pid)

        try:
            wait_until(stopped, STOP_SECONDS, "the stack to stop", interval=0.2)
        except WaitTimeout as exc:
            left = _group_members(self.process.pid)
            _signal_group(self.process.pid, signal.SIGKILL)
            for pid in self.child_pids().values():
                _signal_group(pid, signal.SIGKILL)
            self.process.wait(timeout=30)
            tail = "".join(self.output[-40:])
            raise AssertionError(
                f"{exc}; still in its group: {left}; killed it and its services; "
                f"its last lines:\n{tail}"
            ) from None
        self.process.wait(timeout=30)


def _signal_group(group: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(group, signum)


def _group_members(group: int) -> list[str]:
    """The live processes of process group ``group`` ("pid state command"); zombies, which
    hold their group until someone reaps them, are left out. Linux's /proc; elsewhere the
    group's leader, if the group exists."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return []
        return [f"{group} ? (group exists)"]
    members = []
    for stat in proc.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # ended meanwhile
        command = text[text.find("(") + 1 : text.rfind(")")]
        state, _parent, pgrp = text[text.rfind(")") + 2 :].split()[:3]
        if int(pgrp) == group and state != "Z":
            members.append(f"{stat.parent.name} {state} {command}")
    return members


def _group_is_gone(group: int) -> bool:
    return not _group_members(group)
