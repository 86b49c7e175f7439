"""install-service / uninstall-service: rendering, systemd-analyze, plistlib, fake init systems."""

from __future__ import annotations

import argparse
import io
import os
import plistlib
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from training_host import service_install
from training_host.service_install import MARKER, ServiceSpec

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


class RecordingRunner:
    """Stands in for launchctl/systemctl: records each command, answers with `status`."""

    def __init__(self, status: int = 0) -> None:
        self.commands: list[list[str]] = []
        self.status = status

    def __call__(self, command: Sequence[str]) -> int:
        self.commands.append(list(command))
        return self.status


def parse_cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="training-host")
    service_install.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def make_spec(
    tmp_path: Path, init_system: service_install.InitSystem, **changes: object
) -> ServiceSpec:
    values: dict[str, object] = {
        "init_system": init_system,
        "name": "com.ktrdr.training-host" if init_system == "launchd" else "training-host",
        "python": Path(sys.executable),
        "working_dir": tmp_path,
        "env_file": tmp_path / "training_host.env",
        "log_dir": tmp_path / "logs" if init_system == "launchd" else None,
        "target_dir": tmp_path / "target",
    }
    values.update(changes)
    return ServiceSpec(**values)  # type: ignore[arg-type]


def verify_unit(path: Path) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None, "systemd-analyze is required (apt install systemd)"
    # Plain `verify` loads the file without a running systemd; `--user verify` needs a
    # user manager's runtime directory, which containers and CI lack.
    return subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=path.parent,
    )


def test_rendered_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "systemd")
    spec.target_dir.mkdir()
    spec.path.write_text(service_install.render(spec))

    result = verify_unit(spec.path)

    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_rendered_unit_with_spaces_in_paths_passes_verify(tmp_path: Path) -> None:
    venv_bin = tmp_path / "my venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").symlink_to(sys.executable)
    work = tmp_path / "work dir"
    work.mkdir()
    spec = make_spec(tmp_path, "systemd", python=venv_bin / "python", working_dir=work)
    spec.target_dir.mkdir()
    spec.path.write_text(service_install.render(spec))

    result = verify_unit(spec.path)

    assert result.returncode == 0, result.stderr
    assert f'ExecStart="{venv_bin}/python" -m training_host' in spec.path.read_text()


def test_systemd_analyze_verify_rejects_a_broken_unit(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "systemd")
    spec.target_dir.mkdir()
    text = service_install.render(spec).replace(str(sys.executable), str(tmp_path / "no-python"))
    spec.path.write_text(text.replace("Restart=on-failure", "Restart=sometimes"))

    result = verify_unit(spec.path)

    assert result.returncode != 0
    assert "no-python" in result.stderr
    assert "sometimes" in result.stderr


def test_rendered_unit_restarts_on_failure_and_lets_sessions_checkpoint(tmp_path: Path) -> None:
    text = service_install.render(make_spec(tmp_path, "systemd"))
    lines = {line for line in text.splitlines() if not line.startswith("#")}

    assert {"Restart=on-failure", "RestartSec=5", "KillMode=mixed", "KillSignal=SIGTERM"} <= lines
    assert f"EnvironmentFile=-{tmp_path / 'training_host.env'}" in lines
    assert f"ExecStart={sys.executable} -m training_host" in lines
    assert f"WorkingDirectory={tmp_path}" in lines
    assert "StartLimitBurst=5" in text.split("[Service]")[0]
    assert not any(line.startswith(("PrivateDevices", "MemoryDenyWriteExecute")) for line in lines)


def test_rendered_plist_parses_with_expected_keys_and_absolute_paths(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "launchd")

    plist = plistlib.loads(service_install.render(spec).encode())

    assert plist["Label"] == Path(spec.file_name).stem == "com.ktrdr.training-host"
    assert plist["ProgramArguments"] == [sys.executable, "-m", "training_host"]
    assert plist["RunAtLoad"] is True
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["ThrottleInterval"] > 0
    assert plist["WorkingDirectory"] == str(tmp_path)
    for key in ("StandardOutPath", "StandardErrorPath", "WorkingDirectory"):
        assert Path(plist[key]).is_absolute()
    assert Path(plist["StandardOutPath"]).parent == tmp_path / "logs"
    assert Path(plist["ProgramArguments"][0]).is_absolute()


def test_plist_carries_env_file_variables_escaped(tmp_path: Path) -> None:
    env_file = tmp_path / "training_host.env"
    env_file.write_text("# settings\nTRAINING_HOST_PORT=5099\nTRAINING_HOST_API_TOKEN='a<b&c>d'\n")
    args = parse_cli(
        [
            "install-service",
            "--init-system",
            "launchd",
            "--env-file",
            str(env_file),
            "--working-dir",
            str(tmp_path),
            "--target-dir",
            str(tmp_path / "agents"),
        ]
    )

    plist = plistlib.loads(service_install.render(service_install.spec_from_args(args)).encode())

    assert plist["EnvironmentVariables"]["TRAINING_HOST_PORT"] == "5099"
    assert plist["EnvironmentVariables"]["TRAINING_HOST_API_TOKEN"] == "a<b&c>d"


def test_env_file_with_a_bad_line_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = tmp_path / "bad.env"
    env_file.write_text("TRAINING_HOST_PORT=5002\nthis is not a setting\n")
    args = parse_cli(
        [
            "install-service",
            "--dry-run",
            "--init-system",
            "launchd",
            "--env-file",
            str(env_file),
            "--working-dir",
            str(tmp_path),
        ]
    )

    assert args.func(args, runner=RecordingRunner()) == 1
    assert f"{env_file}:2" in capsys.readouterr().err


@pytest.mark.parametrize("init_system", ["systemd", "launchd"])
def test_install_dry_run_prints_the_file_and_changes_nothing(
    tmp_path: Path, init_system: str, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "target"
    runner = RecordingRunner()
    args = parse_cli(
        [
            "install-service",
            "--dry-run",
            "--init-system",
            init_system,
            "--target-dir",
            str(target),
            "--working-dir",
            str(tmp_path),
            "--log-dir",
            str(tmp_path / "logs"),
        ]
    )

    assert args.func(args, runner=runner) == 0

    out = capsys.readouterr().out
    assert MARKER in out
    assert (
        "Would run: " + ("launchctl bootstrap" if init_system == "launchd" else "systemctl") in out
    )
    assert runner.commands == []
    assert not target.exists()
    assert not (tmp_path / "logs").exists()


def test_install_systemd_writes_the_unit_and_enables_it(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "systemd")
    runner = RecordingRunner()

    service_install.install_service(spec, runner, dry_run=False, out=io.StringIO())

    assert spec.path == tmp_path / "target" / "training-host.service"
    assert MARKER in spec.path.read_text()
    assert runner.commands == [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", "training-host.service"],
    ]


def test_reinstall_systemd_restarts_the_running_unit(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "systemd")
    service_install.install_service(spec, RecordingRunner(), dry_run=False, out=io.StringIO())
    runner = RecordingRunner()

    service_install.install_service(spec, runner, dry_run=False, out=io.StringIO())

    assert runner.commands[-1] == ["systemctl", "--user", "restart", "training-host.service"]


def test_install_launchd_writes_plist_named_for_label_and_bootstraps_it(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "launchd", name="org.example.trainer")
    runner = RecordingRunner()

    service_install.install_service(spec, runner, dry_run=False, out=io.StringIO())

    assert spec.path == tmp_path / "target" / "org.example.trainer.plist"
    assert (tmp_path / "logs").is_dir()
    assert runner.commands == [
        ["launchctl", "bootstrap", f"gui/{os.getuid()}", str(spec.path)],
    ]


def test_install_fails_clearly_when_the_init_system_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse_cli(
        [
            "install-service",
            "--init-system",
            "systemd",
            "--target-dir",
            str(tmp_path / "t"),
            "--working-dir",
            str(tmp_path),
        ]
    )

    assert args.func(args, runner=RecordingRunner(status=1)) == 1
    assert "systemctl --user daemon-reload` failed with exit status 1" in capsys.readouterr().err


def test_install_refuses_to_overwrite_a_file_it_did_not_write(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "systemd")
    spec.target_dir.mkdir()
    spec.path.write_text("[Service]\nExecStart=/bin/true\n")

    with pytest.raises(service_install.ServiceInstallError, match="not written by install"):
        service_install.install_service(spec, RecordingRunner(), dry_run=False)

    assert spec.path.read_text() == "[Service]\nExecStart=/bin/true\n"


def test_uninstall_systemd_disables_removes_and_reloads(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "systemd")
    service_install.install_service(spec, RecordingRunner(), dry_run=False, out=io.StringIO())
    sibling = spec.target_dir / "other.service"
    sibling.write_text("[Service]\nExecStart=/bin/true\n")
    runner = RecordingRunner()

    service_install.uninstall_service(spec, runner, dry_run=False, out=io.StringIO())

    assert not spec.path.exists()
    assert sibling.exists()
    assert runner.commands == [
        ["systemctl", "--user", "disable", "--now", "training-host.service"],
        ["systemctl", "--user", "daemon-reload"],
    ]


def test_uninstall_launchd_boots_out_then_removes(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "launchd")
    service_install.install_service(spec, RecordingRunner(), dry_run=False, out=io.StringIO())
    runner = RecordingRunner(status=3)  # already stopped: bootout fails, the file still goes

    service_install.uninstall_service(spec, runner, dry_run=False, out=io.StringIO())

    assert not spec.path.exists()
    assert (tmp_path / "logs").is_dir()  # logs are the user's; uninstall keeps them
    assert runner.commands == [["launchctl", "bootout", f"gui/{os.getuid()}/{spec.name}"]]


def test_uninstall_leaves_a_file_without_the_marker_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "target"
    target.mkdir()
    foreign = target / "training-host.service"
    foreign.write_text("[Service]\nExecStart=/bin/true\n")
    runner = RecordingRunner()
    args = parse_cli(
        [
            "uninstall-service",
            "--init-system",
            "systemd",
            "--target-dir",
            str(target),
            "--working-dir",
            str(tmp_path),
        ]
    )

    assert args.func(args, runner=runner) == 1

    assert foreign.exists()
    assert runner.commands == []
    assert "not written by install-service" in capsys.readouterr().err


def test_uninstall_dry_run_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = make_spec(tmp_path, "systemd")
    service_install.install_service(spec, RecordingRunner(), dry_run=False, out=io.StringIO())
    runner = RecordingRunner()
    args = parse_cli(
        [
            "uninstall-service",
            "--dry-run",
            "--init-system",
            "systemd",
            "--target-dir",
            str(spec.target_dir),
            "--working-dir",
            str(tmp_path),
        ]
    )

    assert args.func(args, runner=runner) == 0

    assert spec.path.exists()
    assert runner.commands == []
    assert f"Would remove {spec.path}" in capsys.readouterr().out


def test_invalid_unit_name_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse_cli(
        [
            "install-service",
            "--dry-run",
            "--init-system",
            "systemd",
            "--unit-name",
            "../evil",
            "--working-dir",
            str(tmp_path),
        ]
    )

    assert args.func(args, runner=RecordingRunner()) == 1
    assert "invalid service name '../evil'" in capsys.readouterr().err


def test_install_service_help_explains_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_cli(["install-service", "--help"])

    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--dry-run",
        "--env-file",
        "--log-dir",
        "--working-dir",
        "--label",
        "--unit-name",
    ):
        assert option in out


def test_plist_with_double_dashes_in_label_and_paths_still_parses(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "launchd", name="a--b", env_file=tmp_path / "x--y.env")

    plist = plistlib.loads(service_install.render(spec).encode())

    assert plist["Label"] == "a--b"


@pytest.mark.parametrize(
    ("example", "init_system", "home", "log_dir"),
    [
        (
            "launchd/com.ktrdr.training-host.plist",
            "launchd",
            "/Users/you",
            "Library/Logs/training-host",
        ),
        ("systemd/training-host.service", "systemd", "/home/you", None),
    ],
)
def test_shipped_examples_match_what_install_service_renders(
    repo_root: Path,
    example: str,
    init_system: service_install.InitSystem,
    home: str,
    log_dir: str | None,
) -> None:
    checkout = Path(home) / "src" / "training-host-stack"
    path = repo_root / "deploy" / example
    spec = ServiceSpec(
        init_system=init_system,
        name=Path(example).stem,
        python=checkout / ".venv" / "bin" / "python",
        working_dir=checkout,
        env_file=Path(home) / ".config" / "training-host" / "training_host.env",
        log_dir=Path(home) / log_dir if log_dir else None,
        target_dir=path.parent,
    )

    # A template change needs the example re-rendered with these same paths.
    assert path.read_text() == service_install.render(spec)


SECRETS = {
    "TRAINING_HOST_API_TOKEN": "tok-3e5b1d2f",
    "TRAINING_HOST_DATABASE_URL": "postgresql+psycopg://training:pw-9f8e7d@db:5432/training",
}


def _env_file_with_secrets(tmp_path: Path) -> Path:
    env_file = tmp_path / "training_host.env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in SECRETS.items()))
    env_file.chmod(0o600)
    return env_file


@pytest.mark.parametrize("init_system", ["launchd", "systemd"])
def test_the_installed_file_is_readable_by_its_owner_only(tmp_path: Path, init_system: str) -> None:
    env_file = _env_file_with_secrets(tmp_path)
    args = parse_cli(
        [
            "install-service",
            "--init-system",
            init_system,
            "--target-dir",
            str(tmp_path / "target"),
            "--working-dir",
            str(tmp_path),
            "--env-file",
            str(env_file),
            "--log-dir",
            str(tmp_path / "logs"),
        ]
    )
    assert args.func(args, runner=RecordingRunner()) == 0

    (written,) = (tmp_path / "target").iterdir()
    assert written.stat().st_mode & 0o777 == 0o600
    if init_system == "launchd":  # launchd has no EnvironmentFile: the plist holds the token
        plist = plistlib.loads(written.read_bytes())
        assert plist["EnvironmentVariables"]["TRAINING_HOST_API_TOKEN"] == "tok-3e5b1d2f"


def test_a_dry_run_never_prints_a_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = _env_file_with_secrets(tmp_path)
    args = parse_cli(
        [
            "install-service",
            "--dry-run",
            "--init-system",
            "launchd",
            "--target-dir",
            str(tmp_path / "target"),
            "--working-dir",
            str(tmp_path),
            "--env-file",
            str(env_file),
        ]
    )
    assert args.func(args, runner=RecordingRunner()) == 0

    printed = capsys.readouterr()
    assert "tok-3e5b1d2f" not in printed.out + printed.err
    assert "pw-9f8e7d" not in printed.out + printed.err
    assert "postgresql+psycopg://training:&lt;hidden&gt;@db:5432/training" in printed.out
    assert "<key>TRAINING_HOST_API_TOKEN</key>" in printed.out


def test_an_env_file_others_may_read_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = _env_file_with_secrets(tmp_path)
    env_file.chmod(0o644)
    spec = make_spec(tmp_path, "systemd", env_file=env_file)
    service_install.install_service(spec, RecordingRunner(), dry_run=True, out=io.StringIO())
    assert f"chmod 600 {env_file}" in capsys.readouterr().err
