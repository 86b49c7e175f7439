"""Every file the service reads or writes stays inside its folder, links included, and no
file's content comes back in an error or a log (issue 23, finding 5).

Against the real service process. Before: with ``models/ktrdr/<strategy>`` a link, the KTRDR
copy was written outside ``models_dir``; a data file linked to ``/etc/passwd``-like content
was read, and its first line came back in the error, the log and the status.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import find_free_port
from tests.fixtures.servers import HostServiceProcess, run_host_service
from tests.host.conftest import AppFactory, wait_for_status

pytestmark = pytest.mark.slow

SECRET_LINE = "root:x:0:0:root:/root:/bin/bash"
ONE_EPOCH = {"symbol": "AAPL", "timeframe": "1h", "config": {"epochs": 1}}


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory, sample_data_dir: Path) -> dict[str, Path]:
    """The service's folders, a secret file outside them, and links planted inside them."""
    root = tmp_path_factory.mktemp("linked")
    outside = root / "outside"
    outside.mkdir()
    secret = outside / "passwd"
    secret.write_text(f"{SECRET_LINE}\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n")
    data = root / "data"
    shutil.copytree(sample_data_dir, data)
    (data / "LEAK_1h.csv").symlink_to(secret)
    (data / "JUNK_1h.csv").write_text(secret.read_text())  # inside, but no OHLCV
    strategies = root / "strategies"
    shutil.copytree(Path(__file__).parents[2] / "config" / "strategies", strategies)
    (strategies / "leak.yaml").symlink_to(secret)
    host = root / "host"
    (host / "models" / "ktrdr").mkdir(parents=True)
    (outside / "ktrdr_copy").mkdir()
    (host / "models" / "ktrdr" / "momentum_mlp").symlink_to(outside / "ktrdr_copy")
    (host / "checkpoints").mkdir()
    (host / "checkpoints" / "linked-ckpt.ckpt").symlink_to(outside / "planted.ckpt")
    (host / "logs" / "trainings").mkdir(parents=True)
    (host / "logs" / "trainings" / "linked-log.log").symlink_to(outside / "planted.log")
    return {"outside": outside, "data": data, "strategies": strategies, "host": host}


@pytest.fixture(scope="module")
def linked_host(layout: dict[str, Path]) -> Iterator[HostServiceProcess]:
    env = {"TRAINING_HOST_STRATEGIES_DIR": str(layout["strategies"])}
    with run_host_service(layout["host"], find_free_port(), env, layout["data"]) as service:
        yield service


@pytest.fixture
def client(linked_host: HostServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=linked_host.url, timeout=30.0) as client:
        yield client


def test_a_data_file_linked_out_of_its_folder_is_refused_unread(
    client: httpx.Client, linked_host: HostServiceProcess
) -> None:
    answer = client.post("/trainings/start", json={**ONE_EPOCH, "symbol": "LEAK"})

    assert answer.status_code == 422
    assert answer.json()["detail"] == "data file 'LEAK_1h.csv' would lie outside its folder"
    assert "root:" not in linked_host.log_tail(500)


def test_a_data_file_that_is_no_ohlcv_fails_without_quoting_it(
    client: httpx.Client, linked_host: HostServiceProcess
) -> None:
    body = {**ONE_EPOCH, "symbol": "JUNK", "training_id": "junk"}
    assert client.post("/trainings/start", json=body).status_code == 202
    failed = wait_for_status(client, "junk", {"failed"})
    log = client.get("/trainings/junk/logs").text

    assert "missing required column(s)" in failed["error"]
    assert "its header has 1 column(s)" in failed["error"]
    assert "root:" not in failed["error"]
    assert "root:" not in log
    assert "root:" not in linked_host.log_tail(500)


def test_a_strategy_linked_out_of_its_folder_is_refused(client: httpx.Client) -> None:
    answer = client.post("/trainings/start", json={**ONE_EPOCH, "strategy": "leak"})
    assert answer.status_code == 422
    assert "would lie outside its folder" in answer.json()["detail"]
    assert "root:" not in answer.text


def test_the_ktrdr_copy_is_never_written_through_a_link(
    client: httpx.Client, layout: dict[str, Path]
) -> None:
    body = {**ONE_EPOCH, "training_id": "exported"}
    assert client.post("/trainings/start", json=body).status_code == 202
    done = wait_for_status(client, "exported", {"completed"})

    assert list((layout["outside"] / "ktrdr_copy").iterdir()) == []
    assert done["model_path"] is not None  # our own artifact was written; only the copy failed


@pytest.mark.parametrize(
    ("training_id", "planted"), [("linked-ckpt", "planted.ckpt"), ("linked-log", "planted.log")]
)
def test_a_checkpoint_or_log_linked_out_of_its_folder_fails_the_training(
    client: httpx.Client, layout: dict[str, Path], training_id: str, planted: str
) -> None:
    body = {**ONE_EPOCH, "training_id": training_id}
    assert client.post("/trainings/start", json=body).status_code == 202
    failed = wait_for_status(client, training_id, {"failed"})

    assert "UnsafePathError" in failed["error"]
    assert "would lie outside its folder" in failed["error"]
    assert not (layout["outside"] / planted).exists()


def test_a_linked_ktrdr_folder_is_not_written_through(
    start_app: AppFactory, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "ktrdr").symlink_to(outside)  # models_dir/ktrdr itself a link
    url, _ = start_app()
    with httpx.Client(base_url=url, timeout=30.0) as client:
        body = {**ONE_EPOCH, "training_id": "exported"}
        assert client.post("/trainings/start", json=body).status_code == 202
        done = wait_for_status(client, "exported", {"completed"})

    assert list(outside.iterdir()) == []
    assert (tmp_path / "models" / done["model_path"]).is_dir()
