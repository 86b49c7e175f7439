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
# local_stack.py gives each of its two services 45 s to stop before it kills them.
STOP_SECONDS = 150.0


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
        """SIGTERM to the group, so the script stops its own services.

        Raises:
            AssertionError: it did not stop in time; then it and the services it started
                (each in a process group of its own) are killed first.
        """
        _signal_group(self.process.pid, signal.SIGTERM)

        def stopped() -> bool:  # poll() reaps the leader, which the group holds until then
            return self.process.poll() is not None and _group_is_gone(self.process.pid)

        try:
            wait_until(stopped, STOP_SECONDS, "the stack to stop", interval=0.2)
        except WaitTimeout as exc:
            _signal_group(self.process.pid, signal.SIGKILL)
            for pid in self.child_pids().values():
                _signal_group(pid, signal.SIGKILL)
            self.process.wait(timeout=30)
            raise AssertionError(f"{exc}; killed it and its services") from None
        self.process.wait(timeout=30)


def _signal_group(group: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(group, signum)


def _group_is_gone(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return True
    return False
