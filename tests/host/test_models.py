"""The host's own models: listed, read, downloaded and deleted over HTTP (issue 20 item 3)."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.host.conftest import AppFactory, wait_for_status

pytestmark = pytest.mark.slow

ONE_EPOCH = {
    "strategy": "momentum_mlp",
    "symbols": ["AAPL"],
    "timeframes": ["1h"],
    "config": {"epochs": 1, "early_stopping": {"enabled": False}},
}


def test_a_trained_model_is_listed_read_downloaded_and_deleted_on_the_host(
    start_app: AppFactory, tmp_path: Path
) -> None:
    url, _ = start_app()
    models_dir = tmp_path / "models"
    with httpx.Client(base_url=url, timeout=60.0) as host:
        started = host.post("/trainings/start", json=ONE_EPOCH)
        assert started.status_code == 202, started.text
        training_id = started.json()["training_id"]
        wait_for_status(host, training_id, {"completed"})
        # A folder that is a link out of the models folder is neither listed nor served.
        outside = tmp_path / "outside"
        outside.mkdir()
        (outside / "metadata.json").write_text(json.dumps({"model_id": "planted.outside.1"}))
        (models_dir / "momentum_mlp" / "AAPL_1h_v99").symlink_to(outside, target_is_directory=True)

        listed = host.get("/models").json()
        [model] = listed["models"]
        model_id = model["model_id"]
        detail = host.get(f"/models/{model_id}")
        tar = host.get(f"/models/{model_id}/download")
        zipped = host.get(f"/models/{model_id}/download", params={"format": "zip"})
        refusals = {
            "format": host.get(f"/models/{model_id}/download", params={"format": "rar"}),
            "query": host.get("/models", params={"symbols": "AAPL"}),
            "unknown": host.get("/models/no-such-model"),
            "planted": host.get("/models/planted.outside.1"),
            "pattern": host.get("/models/..%2F..%2Fetc"),
        }
        by_symbol = {
            symbol: host.get("/models", params={"symbol": symbol}).json()["total"]
            for symbol in ("AAPL", "MSFT")
        }
        in_use = host.delete(f"/models/{model_id}")
        forced = host.delete(f"/models/{model_id}", params={"force": "true"})
        gone = host.get(f"/models/{model_id}")
        listed_after = host.get("/models").json()

    assert listed["total"] == 1
    assert model["training_id"] == training_id
    assert model["strategy"] == "momentum_mlp"
    assert model["symbols"] == ["AAPL"] and model["timeframes"] == ["1h"]
    assert model["path"].startswith("momentum_mlp/AAPL_1h_v")
    assert model["ktrdr_path"] and model["ktrdr_path"].startswith("ktrdr/momentum_mlp/")
    # The evaluation's verdict as its sentence, not the engine's object.
    assert isinstance(model["verdict"], str) and model["verdict"]
    assert detail.status_code == 200, detail.text
    assert "metadata.json" in detail.json()["files"] and detail.json()["feature_names"]
    assert tar.headers["content-disposition"] == f'attachment; filename="{model_id}.tar.gz"'
    with tarfile.open(fileobj=io.BytesIO(tar.content), mode="r:gz") as archive:
        names = archive.getnames()
    assert f"{model_id}/metadata.json" in names
    assert any(name.startswith(f"{model_id}/ktrdr/") for name in names)
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
        assert sorted(archive.namelist()) == sorted(names)
    for refusal in ("format", "query"):
        assert refusals[refusal].status_code == 422, refusals[refusal].text
    # '..' never reaches a folder: no route takes it, or the id's pattern refuses it.
    assert refusals["pattern"].status_code in {404, 422}
    for refusal in ("unknown", "planted"):
        assert refusals[refusal].status_code == 404, refusals[refusal].text
    assert refusals["unknown"].json() == {
        "detail": "no model with id 'no-such-model'",
        "error": "ModelNotFoundError",
    }
    assert by_symbol == {"AAPL": 1, "MSFT": 0}
    assert in_use.status_code == 409, in_use.text
    assert training_id in in_use.json()["detail"] and "force=true" in in_use.json()["detail"]
    assert forced.status_code == 200, forced.text
    removed = forced.json()["files_removed"]
    assert f"{model['path']}/metadata.json" in removed
    assert any(path.startswith("ktrdr/") for path in removed)
    assert gone.status_code == 404
    assert listed_after["total"] == 0
    assert not (models_dir / model["path"]).exists()
    assert not (models_dir / model["ktrdr_path"]).exists()
    assert (outside / "metadata.json").is_file()
