"""docker-compose.yml and the Dockerfile, checked statically (no Docker engine here).

`compose_spec.json` is the Compose Specification's JSON schema as shipped in the PyPI wheel
docker-compose==1.29.2 (compose/config/compose_spec.json, Apache-2.0), vendored unchanged
because the tests have no network; `test_vendored_schema_is_the_pinned_file` pins it.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from backend_proxy.config import Settings as BackendSettings

SCHEMA_PATH = Path(__file__).with_name("compose_spec.json")
SCHEMA_SHA256 = "0dc04bd346dcfee1b1419628fff79937bbf076925f298f272a2b490e2b112bac"


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${VAR:-default} substitution, for the values this file uses."""

    def replace(match: re.Match[str]) -> str:
        name, kind, text = match.group(1), match.group(2), match.group(3)
        if variables.get(name):
            return variables[name]
        if kind == ":?":
            raise ValueError(f"compose refuses to start: {text}")
        return text or ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", replace, value)


@pytest.fixture(scope="module")
def compose(repo_root: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((repo_root / "docker-compose.yml").read_text())
    return loaded


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft201909Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft201909Validator.check_schema(schema)
    return jsonschema.Draft201909Validator(schema)


def test_vendored_schema_is_the_pinned_file() -> None:
    assert hashlib.sha256(SCHEMA_PATH.read_bytes()).hexdigest() == SCHEMA_SHA256


def test_compose_file_validates_against_the_compose_spec(
    compose: dict[str, Any], validator: jsonschema.Draft201909Validator
) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose)]

    assert errors == []


def test_schema_rejects_a_broken_compose_file(
    compose: dict[str, Any], validator: jsonschema.Draft201909Validator
) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["postgres"]["healthcheck"]["tset"] = ["CMD", "true"]
    broken["services"]["backend"]["depends_on"] = {"postgres": {"condition": "healthy"}}

    paths = {tuple(e.absolute_path) for e in validator.iter_errors(broken)}

    assert ("services", "postgres", "healthcheck") in paths
    assert any(path[:3] == ("services", "backend", "depends_on") for path in paths)


def test_postgres_keeps_data_in_a_named_volume_and_reports_health(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]

    volume, mount = postgres["volumes"][0].split(":")
    assert volume in compose["volumes"]
    assert mount == "/var/lib/postgresql/data"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert "ports" not in postgres


def test_backend_waits_for_healthy_postgres_and_has_a_python_healthcheck(
    compose: dict[str, Any],
) -> None:
    backend = compose["services"]["backend"]

    assert backend["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    test = backend["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    compile(test[3], "<healthcheck>", "exec")  # the snippet is valid python
    assert "http://127.0.0.1:8000/health" in test[3]
    assert backend["command"][:4] == ["backend-proxy", "serve", "--host", "0.0.0.0"]
    assert backend["ports"] == ["127.0.0.1:8000:8000"]
    assert backend["extra_hosts"] == ["host.docker.internal:host-gateway"]


def test_backend_shares_models_and_data_with_the_host_by_bind_mounts(
    compose: dict[str, Any], repo_root: Path
) -> None:
    mounts = dict(volume.split(":")[:2] for volume in compose["services"]["backend"]["volumes"])
    environment = compose["services"]["backend"]["environment"]

    assert mounts["./models"] == environment["BACKEND_MODELS_DIR"]
    assert mounts["./data"] == environment["BACKEND_DATA_DIR"]
    assert mounts["./config/strategies"] == environment["BACKEND_STRATEGIES_DIR"]
    # The host service's defaults are these same folders under its working directory.
    host_defaults = yaml.safe_load(
        (repo_root / "config" / "training_host_service.yaml").read_text()
    )
    assert f"./{host_defaults['models_dir']}" == "./models"
    assert f"./{host_defaults['data_dir']}" == "./data"


def test_backend_environment_is_what_the_backend_settings_read(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = compose["services"]["backend"]["environment"]
    secrets = {
        "TRAINING_HOST_API_TOKEN": "s3cret",
        "BACKEND_API_TOKEN": "own-token",
        "POSTGRES_PASSWORD": "pg-pass",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, interpolate(str(value), secrets))

    settings = BackendSettings()

    assert settings.use_training_host_service is True
    assert settings.training_host_service_url == "http://host.docker.internal:5002"
    assert settings.host_api_token == "s3cret"
    assert settings.api_token is not None
    assert settings.api_token.get_secret_value() == "own-token"
    assert settings.database_url == "postgresql+psycopg://backend:pg-pass@postgres:5432/backend"
    assert settings.models_dir == Path("/app/models")
    assert settings.data_dir == Path("/app/data")
    assert settings.checkpoints_dir == Path("/app/checkpoints")


def test_backend_cannot_start_without_its_own_token(compose: dict[str, Any]) -> None:
    backend = compose["services"]["backend"]
    # The command binds 0.0.0.0, which the backend refuses without a token; compose says so.
    assert backend["command"][backend["command"].index("--host") + 1] == "0.0.0.0"
    with pytest.raises(ValueError, match="BACKEND_API_TOKEN"):
        interpolate(backend["environment"]["BACKEND_API_TOKEN"], {})


def test_database_url_matches_the_postgres_service(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]["environment"]
    chosen = {"POSTGRES_PASSWORD": "pg-pass"}
    url = interpolate(compose["services"]["backend"]["environment"]["BACKEND_DATABASE_URL"], chosen)
    user = postgres["POSTGRES_USER"]
    password = interpolate(postgres["POSTGRES_PASSWORD"], chosen)

    assert url == f"postgresql+psycopg://{user}:{password}@postgres:5432/{postgres['POSTGRES_DB']}"


def test_dockerfile_installs_cpu_torch_before_the_project(repo_root: Path) -> None:
    lines = [
        line.strip()
        for line in (repo_root / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    runs = [line for line in lines if line.startswith("RUN")]

    torch_install = next(i for i, line in enumerate(runs) if "torch==" in line)
    project_install = next(i for i, line in enumerate(runs) if "pip install ." in line)
    assert torch_install < project_install
    assert "--index-url https://download.pytorch.org/whl/cpu torch==2.13.0" in runs[torch_install]
    assert "PIP_CONSTRAINT" in runs[project_install]


def test_dockerfile_copies_only_paths_that_exist_and_are_not_ignored(repo_root: Path) -> None:
    ignored = {
        line.strip()
        for line in (repo_root / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    sources = [
        source.rstrip("/")
        for line in (repo_root / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ")
        for source in line.split()[1:-1]
    ]

    assert sources
    for source in sources:
        assert (repo_root / source).exists(), source
        assert source not in ignored, source
    assert {".venv", "var", "models", "data", ".git"} <= ignored


def test_dockerfile_command_matches_compose(compose: dict[str, Any], repo_root: Path) -> None:
    cmd = next(
        line
        for line in (repo_root / "Dockerfile").read_text().splitlines()
        if line.startswith("CMD")
    )

    assert json.loads(cmd.removeprefix("CMD ")) == compose["services"]["backend"]["command"]


def test_the_database_has_no_default_password(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]["environment"]
    backend = compose["services"]["backend"]["environment"]
    # Unset, compose refuses to start rather than use a password everyone knows.
    for value in (postgres["POSTGRES_PASSWORD"], backend["BACKEND_DATABASE_URL"]):
        with pytest.raises(ValueError, match="POSTGRES_PASSWORD"):
            interpolate(value, {})
