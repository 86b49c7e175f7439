"""Models, deletes and tags through the backend for fallback runs (trained here, on CPU)."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from backend_proxy.config import Settings

from tests.proxy.conftest import run_backend, wait_for_status

pytestmark = pytest.mark.slow

ONE_EPOCH = {
    "strategy": "momentum_mlp",
    "symbols": ["AAPL"],
    "timeframes": ["1h"],
    "config": {"epochs": 1, "early_stopping": {"enabled": False}},
}


@pytest.fixture
def local_backend(proxy_settings: Settings) -> Iterator[httpx.Client]:
    settings = proxy_settings.model_copy(update={"use_training_host_service": False})
    with run_backend(settings) as backend:
        yield backend


def plant_model_outside(models_dir: Path, outside: Path) -> None:
    """A model folder that is a symlink to a folder outside the models folder."""
    outside.mkdir()
    (outside / "metadata.json").write_text(json.dumps({"model_id": "planted.outside.1"}))
    (outside / "secret.txt").write_text("not for download")
    (models_dir / "momentum_mlp").mkdir(parents=True, exist_ok=True)
    (models_dir / "momentum_mlp" / "AAPL_1h_v99").symlink_to(outside, target_is_directory=True)


def test_fallback_model_is_listed_read_downloaded_and_deleted_through_the_backend(
    local_backend: httpx.Client, proxy_settings: Settings, tmp_path: Path
) -> None:
    backend = local_backend
    started = backend.post("/api/trainings/start", json=ONE_EPOCH)
    assert started.status_code == 202, started.text
    training_id = started.json()["training_id"]
    delete_active = backend.delete(f"/api/trainings/{training_id}")
    wait_for_status(backend, training_id, {"completed"})
    plant_model_outside(proxy_settings.models_dir, tmp_path / "outside")

    listed = backend.get("/api/models").json()
    [model] = listed["models"]
    model_id = model["model_id"]
    detail = backend.get(f"/api/models/{model_id}")
    tar = backend.get(f"/api/models/{model_id}/download")
    zipped = backend.get(f"/api/models/{model_id}/download", params={"format": "zip"})
    refusals = {
        "format": backend.get(f"/api/models/{model_id}/download", params={"format": "rar"}),
        "query": backend.get("/api/models", params={"symbols": "AAPL"}),
        "unknown": backend.get("/api/models/no-such-model"),
        "planted": backend.get("/api/models/planted.outside.1"),
        "traversal": backend.get("/api/models/..%2F..%2Fetc"),
    }
    filtered = {
        "AAPL": backend.get("/api/models", params={"symbol": "AAPL"}).json()["total"],
        "MSFT": backend.get("/api/models", params={"symbol": "MSFT"}).json()["total"],
        "training": backend.get("/api/models", params={"training_id": training_id}).json(),
    }
    in_use = backend.delete(f"/api/models/{model_id}")
    forced = backend.delete(f"/api/models/{model_id}", params={"force": "true"})
    gone_model = backend.get(f"/api/models/{model_id}")
    deleted = backend.delete(f"/api/trainings/{training_id}")
    gone_training = backend.get(f"/api/trainings/{training_id}/status")
    listed_after = backend.get("/api/trainings").json()

    assert delete_active.status_code == 409, delete_active.text
    assert "stop it before deleting it" in delete_active.json()["detail"]
    assert listed["total"] == 1 and listed["host_reachable"] is None
    assert model["routed_to"] == "local"
    assert model["training_id"] == training_id
    assert model["strategy"] == "momentum_mlp"
    assert model["symbols"] == ["AAPL"] and model["timeframes"] == ["1h"]
    assert model["path"].startswith("momentum_mlp/AAPL_1h_v")
    assert detail.status_code == 200, detail.text
    assert "metadata.json" in detail.json()["files"]
    assert detail.json()["feature_names"]
    assert tar.headers["content-disposition"] == f'attachment; filename="{model_id}.tar.gz"'
    with tarfile.open(fileobj=io.BytesIO(tar.content), mode="r:gz") as archive:
        names = archive.getnames()
    assert f"{model_id}/metadata.json" in names
    assert any(name.startswith(f"{model_id}/ktrdr/") for name in names)
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
        assert sorted(archive.namelist()) == sorted(names)
    for refusal in ("format", "query"):
        assert refusals[refusal].status_code == 422, refusals[refusal].text
    assert "'symbols'" in refusals["query"].json()["detail"]
    # Nothing reached through a link out of the models folder, nor through '..'.
    for refusal in ("unknown", "planted"):
        assert refusals[refusal].status_code == 404, refusals[refusal].text
    assert refusals["unknown"].json() == {
        "detail": "no model with id 'no-such-model'",
        "error": "ModelNotFoundError",
    }
    assert refusals["traversal"].status_code in {404, 422}
    assert filtered["AAPL"] == 1 and filtered["MSFT"] == 0
    assert [m["model_id"] for m in filtered["training"]["models"]] == [model_id]
    assert in_use.status_code == 409, in_use.text
    assert training_id in in_use.json()["detail"] and "force=true" in in_use.json()["detail"]
    assert forced.status_code == 200, forced.text
    removed = forced.json()["files_removed"]
    assert f"{model['path']}/metadata.json" in removed
    assert any(path.startswith("ktrdr/") for path in removed)
    assert gone_model.status_code == 404
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["training_id"] == training_id
    assert "<checkpoints_dir>/" + f"{training_id}.ckpt" in deleted.json()["files_removed"]
    assert gone_training.status_code == 404
    assert listed_after["total"] == 0
    assert (tmp_path / "outside" / "secret.txt").is_file()


def test_tags_are_replaced_and_checked(local_backend: httpx.Client) -> None:
    training_id = local_backend.post("/api/trainings/start", json=ONE_EPOCH).json()["training_id"]
    path = f"/api/trainings/{training_id}"

    tagged = local_backend.patch(path, json={"tags": ["nightly", "eurusd", "nightly"]})
    replaced = local_backend.patch(path, json={"tags": ["v2"]})
    status = local_backend.get(f"{path}/status").json()
    bad = local_backend.patch(path, json={"tags": ["ok", "not ok!"]})
    too_many = local_backend.patch(path, json={"tags": [f"t{i}" for i in range(17)]})
    unknown_field = local_backend.patch(path, json={"tags": [], "colour": "red"})
    unknown = local_backend.patch("/api/trainings/nope", json={"tags": []})
    local_backend.post(f"{path}/stop")

    assert tagged.status_code == 200, tagged.text
    assert tagged.json()["tags"] == ["nightly", "eurusd"]
    assert replaced.json()["tags"] == status["tags"] == ["v2"]
    assert bad.status_code == 422
    assert "'not ok!'" in bad.json()["detail"]
    assert too_many.status_code == 422
    assert "tags" in too_many.json()["detail"]
    assert unknown_field.status_code == 422
    assert "colour: unknown field" in unknown_field.json()["detail"]
    assert unknown.status_code == 404
