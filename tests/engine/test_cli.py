"""The training-engine command: help, bad input, sample data, training and Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from training_engine.checkpoint import load_checkpoint
from training_engine.cli import EXIT_BAD_INPUT, main

from tests.fixtures.waiting import wait_until


def test_help_explains_both_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "train" in out and "sample-data" in out


def test_train_help_lists_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for option in ("--data-dir", "--models-dir", "--epochs", "--device", "--resume", "--seed"):
        assert option in out


def test_python_dash_m_runs_the_cli(repo_root: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "training_engine", "sample-data", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0
    assert "--bars" in completed.stdout


def test_misspelt_strategy_key_exits_2_naming_the_key(
    strategies_dir: Path, sample_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strategy = yaml.safe_load((strategies_dir / "momentum_mlp.yaml").read_text())
    strategy["model"]["training"]["epocs"] = strategy["model"]["training"].pop("epochs")
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(strategy))
    code = main(
        ["train", str(path), "--data-dir", str(sample_data_dir), "--models-dir", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert "model.training.epocs" in err and "did you mean 'epochs'" in err
    assert "Traceback" not in err


def test_missing_strategy_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["train", str(tmp_path / "nope.yaml"), "--data-dir", ".", "--models-dir", str(tmp_path)]
    )
    assert code == EXIT_BAD_INPUT
    assert "strategy file not found" in capsys.readouterr().err


def test_missing_data_exits_2_naming_the_expected_file(
    strategies_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strategy = str(strategies_dir / "momentum_mlp.yaml")
    code = main(["train", strategy, "--data-dir", str(tmp_path), "--models-dir", str(tmp_path)])
    assert code == EXIT_BAD_INPUT
    assert str(tmp_path / "AAPL_1h.csv") in capsys.readouterr().err


def test_bad_epochs_override_exits_2(
    strategies_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strategy = str(strategies_dir / "momentum_mlp.yaml")
    code = main(
        ["train", strategy, "--data-dir", ".", "--models-dir", str(tmp_path), "--epochs", "0"]
    )
    assert code == EXIT_BAD_INPUT
    assert "epochs" in capsys.readouterr().err


def test_sample_data_writes_one_file_per_symbol_and_timeframe(tmp_path: Path) -> None:
    out = tmp_path / "data"
    code = main(
        [
            "sample-data",
            "--out",
            str(out),
            "--symbols",
            "AAPL",
            "MSFT",
            "--timeframes",
            "1h",
            "4h",
            "--bars",
            "300",
        ]
    )
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "AAPL_1h.csv",
        "AAPL_4h.csv",
        "MSFT_1h.csv",
        "MSFT_4h.csv",
    ]


def test_sample_data_with_bad_bars_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["sample-data", "--out", str(tmp_path), "--bars", "0"])
    assert code == EXIT_BAD_INPUT
    assert "bars" in capsys.readouterr().err


def test_train_prints_metrics_against_baseline_and_the_model_paths(
    strategies_dir: Path, sample_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = tmp_path / "models"
    code = main(
        [
            "train",
            str(strategies_dir / "momentum_mlp.yaml"),
            "--data-dir",
            str(sample_data_dir),
            "--models-dir",
            str(models),
            "--epochs",
            "2",
            "--device",
            "cpu",
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "majority baseline: accuracy" in out
    model_dir = models / "momentum_mlp" / "AAPL_1h_v1"
    assert f"model: {model_dir}" in out
    assert (model_dir / "model.safetensors").is_file()
    ktrdr_copy = models / "ktrdr" / "momentum_mlp" / "AAPL_1h_v1"
    assert f"KTRDR's copy: {ktrdr_copy}" in out
    assert (ktrdr_copy / "model.pt").is_file()


@pytest.mark.slow
def test_ctrl_c_cancels_gracefully_with_a_checkpoint_and_exit_130(
    strategies_dir: Path, sample_data_dir: Path, tmp_path: Path
) -> None:
    strategy = yaml.safe_load((strategies_dir / "momentum_mlp.yaml").read_text())
    # Many epochs and no early stopping: the run is still going when Ctrl-C arrives.
    strategy["model"]["training"].update(epochs=500, early_stopping={"enabled": False})
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(strategy))
    checkpoint = tmp_path / "run.pt"
    process = subprocess.Popen(
        train_command(path, sample_data_dir, tmp_path, "--quiet"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    # The first epoch's checkpoint shows the loop is running.
    wait_until(lambda: checkpoint.exists() or process.poll() is not None, 120, "a checkpoint")
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)

    assert process.returncode == 130, err
    assert f"checkpoint: {checkpoint}" in out
    assert "Traceback" not in err
    state = load_checkpoint(checkpoint)
    assert 1 <= state["epoch"] < 500


def test_train_prints_the_data_report_class_shares_and_the_verdict(
    strategies_dir: Path, sample_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strategy = str(strategies_dir / "momentum_mlp.yaml")
    args = ["--data-dir", str(sample_data_dir), "--models-dir", str(tmp_path), "--epochs", "1"]
    code = main(["train", strategy, *args, "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0
    assert "verdict: " in out
    assert "split (single symbol):" in out and "class shares:" in out and "weights: epoch" in out
    assert "AAPL 1h:" in out and "close: close" in out and "missing bars" in out
    for baseline in ("majority", "random"):
        assert f"accuracy  vs {baseline}" in out and f"macro_f1  vs {baseline}" in out


def train_command(strategy: Path, sample_data_dir: Path, tmp_path: Path, *extra: str) -> list[str]:
    """``python -m training_engine train`` on CPU, checkpointing to ``tmp_path/run.pt``."""
    return [
        sys.executable,
        "-m",
        "training_engine",
        "train",
        str(strategy),
        "--data-dir",
        str(sample_data_dir),
        "--models-dir",
        str(tmp_path / "models"),
        "--device",
        "cpu",
        "--checkpoint",
        str(tmp_path / "run.pt"),
        *extra,
    ]


@pytest.mark.slow
def test_phase_lines_resume_line_and_no_bar_when_not_a_terminal(
    strategies_dir: Path, sample_data_dir: Path, tmp_path: Path
) -> None:
    strategy = yaml.safe_load((strategies_dir / "momentum_mlp.yaml").read_text())
    strategy["model"]["training"].update(epochs=3, batch_size=16, early_stopping={"enabled": False})
    path = tmp_path / "three.yaml"
    path.write_text(yaml.safe_dump(strategy))
    checkpoint = tmp_path / "run.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # No --quiet: the bar stays off all the same, as stderr is a pipe.
    first = subprocess.Popen(
        train_command(path, sample_data_dir, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    wait_until(lambda: checkpoint.exists() or first.poll() is not None, 120, "a checkpoint")
    first.send_signal(signal.SIGINT)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 130, err
    state = load_checkpoint(checkpoint)

    resumed = subprocess.run(
        train_command(path, sample_data_dir, tmp_path, "--resume", str(checkpoint)),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )

    assert out.splitlines()[:2] == ["loading data and computing features...", "training..."]
    assert "%|" not in err and "batch/s" not in err, "a progress bar was drawn into a pipe"
    assert resumed.returncode == 0, resumed.stderr
    lines = resumed.stdout.splitlines()
    assert lines[:3] == [
        "loading data and computing features...",
        "training...",
        f"resumed at epoch {state['epoch'] + 1}, batch {state['batch']}",
    ]
    assert lines.index("evaluating on the test part...") < lines.index("saving the model...")
    assert "%|" not in resumed.stderr
