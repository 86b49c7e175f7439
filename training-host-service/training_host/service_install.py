"""`training-host install-service` / `uninstall-service`: launchd and systemd user services.

The templates in `training_host/deploy_templates/` are rendered with this machine's absolute
paths (the virtualenv's python, working directory, log directory, env file), written to the
init system's folder and started. Every file written carries `MARKER`; uninstall removes a file
only when it carries the marker, so it never deletes what install did not write. Nothing here
kills processes: stopping is left to `launchctl bootout` / `systemctl --user disable --now`.

Secrets: a plist carries the env file's variables (the token, a database password), so the file
is written readable by its owner only (0600, as every file written here), and `--dry-run`
prints secret values as `<hidden>`: nothing here ever prints one.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from string import Template
from typing import Literal, TextIO
from xml.sax.saxutils import escape

from training_engine.atomic_files import write_atomically

InitSystem = Literal["launchd", "systemd"]
# Runs one command and returns its exit status; tests inject a recorder instead.
CommandRunner = Callable[[Sequence[str]], int]

MARKER = "Installed by training-host install-service; uninstall-service removes this file."
DEFAULT_LABEL = "com.ktrdr.training-host"
DEFAULT_UNIT_NAME = "training-host"
# Seconds between SIGTERM and SIGKILL: the service checkpoints running sessions meanwhile.
DEFAULT_STOP_TIMEOUT_SECONDS = 120
# `python -m training_host` is `training-host serve` (training_host/__main__.py adds "serve").
SERVE_ARGUMENTS = ("-m", "training_host")
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Variables whose values are secrets, and a password inside a URL (postgresql://u:PW@host).
_SECRET_NAME = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET|CREDENTIAL|PRIVATE|_KEY$", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^/:@\s]*:)[^@\s]+(@)")
HIDDEN = "<hidden>"


class ServiceInstallError(Exception):
    """A service cannot be installed or uninstalled; the message says why and what to do."""


@dataclass(frozen=True)
class ServiceSpec:
    """What a rendered service runs, and where its files and logs go."""

    init_system: InitSystem
    name: str
    python: Path
    working_dir: Path
    env_file: Path
    log_dir: Path | None
    target_dir: Path
    stop_timeout_seconds: int = DEFAULT_STOP_TIMEOUT_SECONDS
    environment: Mapping[str, str] = field(default_factory=dict)

    @property
    def file_name(self) -> str:
        suffix = ".plist" if self.init_system == "launchd" else ".service"
        return self.name + suffix

    @property
    def path(self) -> Path:
        return self.target_dir / self.file_name


def detect_init_system() -> InitSystem:
    """launchd on macOS, systemd elsewhere."""
    return "launchd" if sys.platform == "darwin" else "systemd"


def default_target_dir(init_system: InitSystem) -> Path:
    """Where the init system looks for per-user services."""
    if init_system == "launchd":
        return Path.home() / "Library" / "LaunchAgents"
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "systemd" / "user"


def default_log_dir(init_system: InitSystem) -> Path | None:
    """launchd writes to files; systemd logs to the journal unless --log-dir is given."""
    if init_system == "launchd":
        return Path.home() / "Library" / "Logs" / "training-host"
    return None


def default_env_file() -> Path:
    """Settings for the installed service, outside the repository and outside the unit."""
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "training-host" / "training_host.env"


def default_working_dir() -> Path:
    """The repository checkout this package runs from (editable install), else the cwd."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file() and (parent / "config").is_dir():
            return parent
    return Path.cwd()


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a systemd-style env file (KEY=value, # comments, optional quotes)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, sep, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        if not sep or not _ENV_NAME_PATTERN.match(key):
            raise ServiceInstallError(f"{path}:{number}: expected KEY=value, got {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def redact(environment: Mapping[str, str]) -> dict[str, str]:
    """``environment`` fit to print: secret values hidden, passwords cut out of URLs."""
    return {
        key: HIDDEN if _SECRET_NAME.search(key) else _URL_PASSWORD.sub(rf"\1{HIDDEN}\2", value)
        for key, value in environment.items()
    }


def _template(name: str) -> Template:
    text = resources.files("training_host.deploy_templates").joinpath(name).read_text("utf-8")
    return Template(text)


def _systemd_quote(value: str) -> str:
    """Quote one ExecStart word the way systemd parses it."""
    if value and not re.search(r"[\s\"'\\$%;]", value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def _xml_comment_safe(text: str) -> str:
    """XML comments may not contain "--"; paths and labels occasionally do."""
    return escape(text).replace("--", "-\N{ZERO WIDTH SPACE}-")


def render(spec: ServiceSpec) -> str:
    """The unit or plist text for `spec`, with absolute paths."""
    if spec.init_system == "launchd":
        environment = {"PYTHONUNBUFFERED": "1", **spec.environment}
        env_lines = "".join(
            f"        <key>{escape(key)}</key>\n        <string>{escape(value)}</string>\n"
            for key, value in environment.items()
        )
        log_dir = spec.log_dir or default_log_dir("launchd")
        return _template("training-host.plist.tmpl").substitute(
            marker=MARKER,
            label=escape(spec.name),
            python=escape(str(spec.python)),
            working_dir=escape(str(spec.working_dir)),
            label_in_comment=_xml_comment_safe(spec.name),
            env_file_in_comment=_xml_comment_safe(str(spec.env_file)),
            environment=env_lines,
            stop_timeout=spec.stop_timeout_seconds,
            log_dir=escape(str(log_dir)),
        )
    exec_start = " ".join(_systemd_quote(word) for word in (str(spec.python), *SERVE_ARGUMENTS))
    if spec.log_dir is None:
        log_lines = "# Output goes to the journal: journalctl --user -u " + spec.file_name + "\n"
    else:
        log_lines = (
            f"StandardOutput=append:{spec.log_dir}/training-host.out.log\n"
            f"StandardError=append:{spec.log_dir}/training-host.err.log\n"
        )
    return _template("training-host.service.tmpl").substitute(
        marker=MARKER,
        unit_file=spec.file_name,
        working_dir=str(spec.working_dir),
        env_file=str(spec.env_file),
        exec_start=exec_start,
        stop_timeout=spec.stop_timeout_seconds,
        log_lines=log_lines,
    )


def _launchd_domain() -> str:
    return f"gui/{os.getuid()}"


def install_commands(spec: ServiceSpec, replacing: bool) -> list[list[str]]:
    """The commands that load and start the written file."""
    if spec.init_system == "launchd":
        commands = [["launchctl", "bootstrap", _launchd_domain(), str(spec.path)]]
        if replacing:
            # bootstrap refuses a label that is already loaded: unload the old one first.
            commands.insert(0, ["launchctl", "bootout", f"{_launchd_domain()}/{spec.name}"])
        return commands
    commands = [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", spec.file_name],
    ]
    if replacing:
        # enable --now leaves a running old version alone; restart picks up the new unit.
        commands.append(["systemctl", "--user", "restart", spec.file_name])
    return commands


def uninstall_commands(spec: ServiceSpec) -> tuple[list[list[str]], list[list[str]]]:
    """Commands to run before removing the file, and after."""
    if spec.init_system == "launchd":
        return [["launchctl", "bootout", f"{_launchd_domain()}/{spec.name}"]], []
    return (
        [["systemctl", "--user", "disable", "--now", spec.file_name]],
        [["systemctl", "--user", "daemon-reload"]],
    )


def _written_by_install(path: Path) -> bool:
    try:
        return MARKER in path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False


def run_command(command: Sequence[str]) -> int:
    """Run one init-system command, its output going to the terminal."""
    try:
        return subprocess.run(list(command), check=False).returncode
    except FileNotFoundError as exc:
        raise ServiceInstallError(
            f"{command[0]} not found: is {'launchd' if command[0] == 'launchctl' else 'systemd'}"
            " the init system here? Use --dry-run to see the file without installing it."
        ) from exc


def _run_all(
    commands: Sequence[Sequence[str]],
    runner: CommandRunner,
    out: TextIO,
    tolerate_failure: bool = False,
) -> None:
    for command in commands:
        print("+ " + shlex.join(command), file=out)
        status = runner(command)
        if status != 0 and not tolerate_failure:
            raise ServiceInstallError(f"`{shlex.join(command)}` failed with exit status {status}")


def install_service(
    spec: ServiceSpec, runner: CommandRunner, dry_run: bool, out: TextIO | None = None
) -> None:
    """Render `spec`, write it (creating the folders) and start it; on dry run only print."""
    out = out or sys.stdout
    if spec.path.exists() and not _written_by_install(spec.path):
        raise ServiceInstallError(
            f"{spec.path} exists and was not written by install-service; choose another "
            "--label/--unit-name or remove that file yourself"
        )
    replacing = spec.path.exists()
    commands = install_commands(spec, replacing)
    _warn_if_env_file_is_shared(spec.env_file)
    if dry_run:
        print(f"Would write {spec.path} (mode 0600; secret values shown as {HIDDEN}):\n", file=out)
        print(render(replace(spec, environment=redact(spec.environment))), file=out)
        if spec.log_dir is not None:
            print(f"Would create the log directory {spec.log_dir}", file=out)
        for command in commands:
            print("Would run: " + shlex.join(command), file=out)
        return
    if replacing and spec.init_system == "launchd":
        # The old job must go before its file changes; it may already be stopped.
        _run_all(commands[:1], runner, out, tolerate_failure=True)
        commands = commands[1:]
    spec.target_dir.mkdir(parents=True, exist_ok=True)
    if spec.log_dir is not None:
        spec.log_dir.mkdir(parents=True, exist_ok=True)
    # mkstemp's file, renamed into place: readable by its owner only (0600).
    text = render(spec).encode("utf-8")
    write_atomically(spec.path, lambda handle: handle.write(text))
    print(f"Wrote {spec.path} (mode 0600)", file=out)
    _run_all(commands, runner, out)


def _warn_if_env_file_is_shared(env_file: Path) -> None:
    """The env file holds the token: say so when others may read it."""
    try:
        mode = env_file.stat().st_mode & 0o777
    except OSError:
        return
    if mode & 0o077:
        print(
            f"warning: {env_file} is readable by others (mode {mode:04o}); "
            f"it holds the API token: chmod 600 {shlex.quote(str(env_file))}",
            file=sys.stderr,
        )


def uninstall_service(
    spec: ServiceSpec, runner: CommandRunner, dry_run: bool, out: TextIO | None = None
) -> None:
    """Stop and remove a service that install-service wrote; anything else is left alone."""
    out = out or sys.stdout
    if not spec.path.exists():
        raise ServiceInstallError(f"{spec.path} does not exist: nothing to uninstall")
    if not _written_by_install(spec.path):
        raise ServiceInstallError(
            f"{spec.path} was not written by install-service (no marker line): left untouched"
        )
    before, after = uninstall_commands(spec)
    if dry_run:
        for command in before:
            print("Would run: " + shlex.join(command), file=out)
        print(f"Would remove {spec.path}", file=out)
        for command in after:
            print("Would run: " + shlex.join(command), file=out)
        return
    # A service that is already stopped makes these fail; the file must go regardless.
    _run_all(before, runner, out, tolerate_failure=True)
    spec.path.unlink()
    print(f"Removed {spec.path}", file=out)
    _run_all(after, runner, out)


def spec_from_args(args: argparse.Namespace) -> ServiceSpec:
    """Build the spec from parsed CLI options, filling in this machine's defaults."""
    init_system: InitSystem = (
        detect_init_system() if args.init_system == "auto" else args.init_system
    )
    name = args.label if init_system == "launchd" else args.unit_name
    name = name.removesuffix(".service").removesuffix(".plist")
    if not _NAME_PATTERN.match(name):
        raise ServiceInstallError(
            f"invalid service name {name!r}: use letters, digits, '.', '_' and '-'"
        )
    env_file = Path(args.env_file).expanduser().absolute()
    environment = read_env_file(env_file) if init_system == "launchd" else {}
    log_dir = args.log_dir or default_log_dir(init_system)
    working_dir = Path(args.working_dir).expanduser().absolute()
    if not working_dir.is_dir():
        raise ServiceInstallError(f"working directory {working_dir} does not exist")
    return ServiceSpec(
        init_system=init_system,
        name=name,
        python=Path(args.python).absolute(),
        working_dir=working_dir,
        env_file=env_file,
        log_dir=Path(log_dir).expanduser().absolute() if log_dir else None,
        target_dir=Path(args.target_dir or default_target_dir(init_system)).expanduser(),
        stop_timeout_seconds=args.stop_timeout,
        environment=environment,
    )


def handle_install(args: argparse.Namespace, runner: CommandRunner = run_command) -> int:
    """Entry point of `training-host install-service`."""
    try:
        spec = spec_from_args(args)
        install_service(spec, runner, dry_run=args.dry_run)
    except ServiceInstallError as exc:
        print(f"install-service: error: {exc}", file=sys.stderr)
        return 1
    if not args.dry_run:
        print(f"Installed and started {spec.name} ({spec.init_system}).")
    return 0


def handle_uninstall(args: argparse.Namespace, runner: CommandRunner = run_command) -> int:
    """Entry point of `training-host uninstall-service`."""
    try:
        spec = spec_from_args(args)
        uninstall_service(spec, runner, dry_run=args.dry_run)
    except ServiceInstallError as exc:
        print(f"uninstall-service: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {value}")
    return number


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be written and run, and change nothing",
    )
    parser.add_argument(
        "--init-system",
        choices=["auto", "launchd", "systemd"],
        default="auto",
        help="launchd (macOS) or systemd (Linux); default: this machine's",
    )
    parser.add_argument(
        "--label",
        default=DEFAULT_LABEL,
        help=f"launchd label, also the plist's file name (default: {DEFAULT_LABEL})",
    )
    parser.add_argument(
        "--unit-name",
        default=DEFAULT_UNIT_NAME,
        help=f"systemd unit name without .service (default: {DEFAULT_UNIT_NAME})",
    )
    parser.add_argument(
        "--target-dir",
        default=None,
        help="folder for the unit or plist (default: ~/.config/systemd/user or "
        "~/Library/LaunchAgents)",
    )
    parser.add_argument(
        "--env-file",
        default=str(default_env_file()),
        help="settings file of TRAINING_HOST_* variables, see config/training_host.env.example "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--log-dir",
        default=None,
        help="folder for stdout/stderr logs (default: ~/Library/Logs/training-host on macOS, "
        "the journal with systemd)",
    )
    parser.add_argument(
        "--working-dir",
        default=str(default_working_dir()),
        help="the service's working directory (default: %(default)s)",
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="python that runs `-m training_host` (default: %(default)s)",
    )
    parser.add_argument(
        "--stop-timeout",
        type=_positive_int,
        default=DEFAULT_STOP_TIMEOUT_SECONDS,
        help="seconds from SIGTERM to SIGKILL, for sessions to checkpoint (default: %(default)s)",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `install-service` and `uninstall-service` to the training-host CLI."""
    install = subparsers.add_parser(
        "install-service",
        help="run the service at login and restart it when it dies (launchd/systemd)",
        description="Render the launchd plist (macOS) or systemd user unit (Linux) with this "
        "machine's absolute paths, write it and start the service. Re-running replaces a "
        "previous install. See deploy/launchd/README.md and deploy/systemd/README.md.",
    )
    _add_common_options(install)
    install.set_defaults(func=handle_install)
    uninstall = subparsers.add_parser(
        "uninstall-service",
        help="stop the installed service and remove its unit or plist",
        description="Stop the service and remove the file install-service wrote. Files without "
        "install-service's marker line are never removed. Logs and the env file are kept.",
    )
    _add_common_options(uninstall)
    uninstall.set_defaults(func=handle_uninstall)
