"""A completed run's KTRDR copy: KTRDR's model-folder layout, loadable by KTRDR's networks.

``train`` writes it (``model_folders``) beside our own folder. What KTRDR's backtester
makes of it (``metadata_v3.json``) is in test_ktrdr_backtest.py.

``ktrdr_mlp`` below is written from the facts on KTRDR's ``MLPTradingModel.build_model``
(an ``nn.Sequential`` of Linear, activation, Dropout per hidden layer, then Linear to the
classes); ``load_like_model_storage`` follows what KTRDR's ``ModelStorage.load_model``
reads. Neither is KTRDR's code.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torch import nn
from training_engine.artifacts import load_trained_model
from training_engine.dataset import prepare_dataset
from training_engine.job import TrainingJob, TrainingResult
from training_engine.ktrdr_export import (
    SUMMARY_FILE,
    UNSUPPORTED_FILE,
    V3_METADATA_FILE,
    ktrdr_models_dir,
    read_summary,
)
from training_engine.model_folders import write_model_folders
from training_engine.strategy import StrategyConfig, load_strategy, parse_strategy
from training_engine.trainer import train
from training_engine.windows import gather_windows

from tests.engine.ktrdr_bundle import build_network
from tests.engine.synthetic import cpu_job, make_dataset

KTRDR_FILES = {"model.pt", "config.json", "metrics.json", "features.json", "metadata.json"}
KTRDR_ACTIVATION = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def ktrdr_mlp(config: dict[str, Any], input_size: int) -> nn.Sequential:
    """KTRDR's MLP layout, built from its config.json ``model.architecture``."""
    architecture = config["model"]["architecture"]
    layers: list[nn.Module] = []
    width = input_size
    for size in architecture["hidden_layers"]:
        layers += [
            nn.Linear(width, size),
            KTRDR_ACTIVATION[architecture.get("activation", "relu")](),
            nn.Dropout(architecture.get("dropout", 0.2)),
        ]
        width = size
    layers.append(nn.Linear(width, config["model"].get("num_classes", 3)))
    return nn.Sequential(*layers)


def load_like_model_storage(
    base: Path, strategy: str, symbol: str, timeframe: str
) -> dict[str, Any]:
    """The newest model via ``{symbol}_{timeframe}_latest``; all four JSON files required."""
    folder = (base / strategy / f"{symbol}_{timeframe}_latest").resolve()
    loaded: dict[str, Any] = {
        name: json.loads((folder / f"{name}.json").read_text())
        for name in ("config", "metrics", "features", "metadata")
    }
    loaded["model"] = torch.load(folder / "model.pt", weights_only=True)
    loaded["model_path"] = folder
    return loaded


def _run(strategy_file: Path, data_dir: Path, tmp_path: Path) -> tuple[TrainingJob, TrainingResult]:
    return _train(load_strategy(strategy_file), data_dir, tmp_path, epochs=2)


def _train(
    strategy: StrategyConfig, data_dir: Path, tmp_path: Path, epochs: int
) -> tuple[TrainingJob, TrainingResult]:
    job = cpu_job(strategy, data_dir, tmp_path, epochs)
    return job, train(job)


@pytest.fixture(scope="module")
def mlp_run(
    sample_data_dir: Path, strategies_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[TrainingJob, TrainingResult]:
    return _run(strategies_dir / "momentum_mlp.yaml", sample_data_dir, tmp_path_factory.mktemp("m"))


def _ktrdr_folder(result: TrainingResult) -> Path:
    assert result.ktrdr_error is None
    assert result.ktrdr_model_path is not None
    return result.ktrdr_model_path


def test_mlp_copy_loads_into_ktrdrs_mlp_strictly_and_predicts_the_same(
    mlp_run: tuple[TrainingJob, TrainingResult],
) -> None:
    job, result = mlp_run
    folder = _ktrdr_folder(result)

    loaded = load_like_model_storage(ktrdr_models_dir(job.models_dir), "momentum_mlp", "AAPL", "1h")
    network = ktrdr_mlp(loaded["config"], loaded["metadata"]["input_size"])
    network.load_state_dict(loaded["model"], strict=True)
    ours = load_trained_model(result.model_path or Path()).model
    data = prepare_dataset(job.strategy, job.data_dir)
    windows = torch.from_numpy(gather_windows(data, "test")[:64])

    # An MLP over two bars: every file KTRDR's earlier eras read, and no metadata_v3.json
    # (KTRDR's backtester feeds an MLP one bar), with the note saying so.
    assert {p.name for p in folder.iterdir()} == KTRDR_FILES | {UNSUPPORTED_FILE}
    assert "an MLP over 2 bars" in (folder / UNSUPPORTED_FILE).read_text()
    assert loaded["model_path"] == folder
    assert loaded["metadata"]["is_trained"] is True
    # KTRDR before its HEAD reads the architecture at the top of config.json
    assert loaded["config"]["architecture"] == loaded["config"]["model"]["architecture"]
    assert loaded["metadata"]["model_type"] == "MLPTradingModel"
    assert loaded["metadata"]["input_size"] == loaded["features"]["feature_count"]
    assert loaded["features"]["feature_count"] == windows[0].numel()
    assert loaded["metrics"]["epochs_trained"] == 2
    with torch.no_grad():
        expected = ours.eval()(windows)
        actual = network.eval()(windows.flatten(start_dim=1))
    torch.testing.assert_close(actual, expected)


def test_each_written_model_is_a_new_version_and_latest_follows_it(
    mlp_run: tuple[TrainingJob, TrainingResult], tmp_path: Path
) -> None:
    job, trained = mlp_run
    model = load_trained_model(trained.model_path or Path()).model
    data = prepare_dataset(job.strategy, job.data_dir)
    first, second = replace(trained), replace(trained)
    write_model_folders(tmp_path, job.strategy, model, data, first)
    write_model_folders(tmp_path, job.strategy, model, data, second)
    first_copy, second_copy = _ktrdr_folder(first), _ktrdr_folder(second)
    latest = first_copy.parent / "AAPL_1h_latest"

    assert first_copy == ktrdr_models_dir(tmp_path) / "momentum_mlp" / "AAPL_1h_v1"
    assert second_copy.name == "AAPL_1h_v2"
    assert latest.is_symlink()
    assert str(latest.readlink()) == second_copy.name  # relative, as KTRDR writes it
    # Only the finished versions and the link: no staging folder is left behind.
    assert sorted(p.name for p in first_copy.parent.iterdir()) == [
        "AAPL_1h_latest",
        "AAPL_1h_v1",
        "AAPL_1h_v2",
    ]


def test_summary_in_our_artifact_carries_real_metrics_and_the_ktrdr_path(
    mlp_run: tuple[TrainingJob, TrainingResult],
) -> None:
    _job, result = mlp_run
    folder = _ktrdr_folder(result)
    summary = read_summary(result.model_path)

    assert summary is not None
    assert (Path(result.model_path or Path()) / SUMMARY_FILE).is_file()
    assert summary["ktrdr_model_path"] == str(folder)
    assert summary["ktrdr_error"] is None
    training, test = summary["training_metrics"], summary["test_metrics"]
    assert 0.0 < training["final_train_accuracy"] <= 1.0
    assert training["final_train_loss"] == result.history[-1].train_loss
    assert test["test_loss"] > 0.0
    # The trainer's scores of the parts, from the data it trained on.
    assert test["test_loss"] == result.part_scores["test"].loss
    assert training["final_train_accuracy"] == result.part_scores["train"].accuracy
    assert result.test_metrics is not None
    assert test["test_accuracy"] == result.test_metrics.accuracy
    assert test["f1_score"] == result.test_metrics.macro_f1
    assert summary["model_info"]["ktrdr_loadable"] is True


def test_lstm_copy_has_ktrdrs_lstm_keys_and_says_why_ktrdr_cannot_backtest_it(
    sample_data_dir: Path, strategies_dir: Path, tmp_path: Path
) -> None:
    job, result = _run(strategies_dir / "trend_lstm.yaml", sample_data_dir, tmp_path)
    folder = _ktrdr_folder(result)
    metadata = json.loads((folder / "metadata.json").read_text())
    config = json.loads((folder / "config.json").read_text())
    ours = load_trained_model(result.model_path or Path()).model
    data = prepare_dataset(job.strategy, job.data_dir)
    network = build_network(config["model"], data.n_features)
    network.load_state_dict(torch.load(folder / "model.pt", weights_only=True), strict=True)
    windows = torch.from_numpy(gather_windows(data, "test")[:64])

    assert metadata["ktrdr_loadable"] is True
    assert metadata["model_type"] == "LSTMTradingModel"
    assert config["model"]["architecture"] == {
        "hidden_size": 32,
        "num_layers": 1,
        "dropout": 0.1,
        "sequence_length": 24,
    }
    # Its price context inputs are the engine's own: KTRDR's backtester cannot compute them.
    assert result.ktrdr_unsupported is not None and "price context" in result.ktrdr_unsupported
    assert "price context" in (folder / UNSUPPORTED_FILE).read_text()
    assert not (folder / V3_METADATA_FILE).exists()
    with torch.no_grad():  # not backtestable: the weights read our standardised inputs
        torch.testing.assert_close(network.eval()(windows), ours.eval()(windows))


def test_a_cancelled_run_writes_no_model(
    mlp_run: tuple[TrainingJob, TrainingResult], tmp_path: Path
) -> None:
    job = mlp_run[0]
    model = load_trained_model(mlp_run[1].model_path or Path()).model
    cancelled = TrainingResult(status="cancelled", device="cpu", epochs_completed=0, total_epochs=2)
    with pytest.raises(ValueError, match="completed"):
        write_model_folders(tmp_path, job.strategy, model, make_dataset(), cancelled)
    assert list(tmp_path.iterdir()) == []


def _ktrdr_head_size(config: dict[str, Any]) -> int:
    """What KTRDR's MLP ends in: one output for a regression, else ``num_classes``."""
    if config["model"]["output_format"] == "regression":
        return 1
    return int(config["model"]["num_classes"])


@pytest.mark.parametrize(
    ("strategy_file", "labels", "outputs"),
    [
        ("v3_forward_return_regression.yaml", None, 1),
        ("v3_forward_return_regression.yaml", {"source": "multi_scale_regime"}, 4),
    ],
    ids=["regression", "four_regimes"],
)
def test_a_regression_head_or_four_classes_export_as_ktrdrs_mlp_builds_them(
    strategy_file: str,
    labels: dict[str, Any] | None,
    outputs: int,
    sample_data_dir: Path,
    tmp_path: Path,
) -> None:
    document = yaml.safe_load(
        (Path(__file__).parent / "ktrdr_strategies" / strategy_file).read_text()
    )
    if labels is not None:  # the same inputs, classes instead of a regression target
        document.pop("decisions")
        document["training"].pop("loss")
        document["training"]["labels"] = labels
    _job, result = _train(parse_strategy(document), sample_data_dir, tmp_path, epochs=1)
    folder = _ktrdr_folder(result)
    config = json.loads((folder / "config.json").read_text())
    metadata = json.loads((folder / "metadata.json").read_text())
    summary = read_summary(result.model_path)

    assert _ktrdr_head_size(config) == outputs
    assert metadata["ktrdr_loadable"] is True
    network = ktrdr_mlp(config, metadata["input_size"])
    network[-1] = nn.Linear(network[-1].in_features, _ktrdr_head_size(config))
    network.load_state_dict(torch.load(folder / "model.pt", weights_only=True), strict=True)
    assert summary is not None
    assert 0.0 <= summary["test_metrics"]["test_accuracy"] <= 1.0
    assert summary["test_metrics"]["test_loss"] > 0.0
