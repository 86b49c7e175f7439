"""``GET /``, ``/docs`` and ``/redoc`` on both services: negotiation and offline assets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from backend_proxy.config import Settings as ProxySettings
from training_host.main import create_app
from training_sessions.http.pages import DASHBOARD_DIR, prefers_html

from tests.conftest import find_free_port
from tests.fixtures.servers import serve_app
from tests.host.conftest import host_settings

# proxy_settings: imported so that this module can use the proxy package's fixture.
from tests.proxy.conftest import proxy_settings, run_backend  # noqa: F401

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
TOKEN = "pages-s3cret"


@pytest.fixture(params=["training-host", "backend-proxy"])
def service(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sample_data_dir: Path,
    strategies_dir: Path,
) -> Iterator[tuple[str, str, httpx.Client]]:
    """(service name, its API prefix, a client bound to it) for each service in turn."""
    if request.param == "backend-proxy":
        proxy_settings: ProxySettings = request.getfixturevalue("proxy_settings")
        settings = proxy_settings.model_copy(update={"use_training_host_service": False})
        with run_backend(settings) as client:
            yield request.param, "/api/trainings", client
        return
    # With a token: the pages load without it (the page then asks for it).
    app = create_app(host_settings(tmp_path, sample_data_dir, strategies_dir, api_token=TOKEN))
    with serve_app(app, find_free_port()) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield request.param, "/trainings", client


def local_references(page: str) -> list[str]:
    """Every src/href/url of a page; fails on one pointing at another host."""
    references = re.findall(r"""(?:src|href)=["']([^"']+)["']|url:\s*'([^']+)'""", page)
    urls = [next(part for part in match if part) for match in references]
    remote = [u for u in urls if urlsplit(u).scheme or u.startswith("//")]
    assert not remote, f"the page loads from other hosts: {remote}"
    assert not re.search(r"https?://", page), "the page names an http(s) URL"
    return urls


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/json, */*"])
def test_root_answers_api_clients_with_the_service_identity(
    service: tuple[str, str, httpx.Client], accept: str | None
) -> None:
    name, _, client = service
    headers = {"accept": accept} if accept is not None else {}
    client.headers.pop("accept", None)
    response = client.get("/", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"service": name, "version": "0.1.0", "status": "ok"}
    assert response.headers["vary"] == "Accept"


def test_root_serves_the_dashboard_to_browsers(service: tuple[str, str, httpx.Client]) -> None:
    name, api_prefix, client = service
    response = client.get("/", headers={"accept": BROWSER_ACCEPT})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert f'data-api-prefix="{api_prefix}"' in response.text
    assert f'data-service="{name}"' in response.text
    assets = [u for u in local_references(response.text) if u.startswith("static/")]
    assert sorted(assets) == ["static/dashboard/dashboard.css", "static/dashboard/dashboard.js"]
    for asset in assets:
        served = client.get("/" + asset)
        assert served.status_code == 200, asset
        kind = "text/css" if asset.endswith(".css") else "text/javascript"
        assert served.headers["content-type"].startswith(kind)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_load_only_assets_this_service_serves(
    service: tuple[str, str, httpx.Client], page: str
) -> None:
    _, _, client = service
    response = client.get(page)
    assert response.status_code == 200
    urls = local_references(response.text)
    scripts = [u for u in urls if u.endswith(".js")]
    assert scripts, f"{page} loads no script"
    for url in urls:
        served = client.get(url)
        assert served.status_code == 200, url
        if url.endswith((".js", ".css")):
            assert served.headers["content-type"].split(";")[0] in {
                "text/javascript",
                "text/css",
            }
        else:
            assert served.headers["content-type"].startswith(("application/json", "image/"))


@pytest.mark.parametrize("path", ["/static/docs/core.py", "/static/dashboard/index.html"])
def test_only_the_listed_assets_are_served(
    service: tuple[str, str, httpx.Client], path: str
) -> None:
    _, _, client = service
    response = client.get(path)
    assert response.status_code == 404
    assert "no asset" in response.json()["detail"]


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        ("", False),
        ("*/*", False),
        ("application/json", False),
        ("text/html", True),
        (BROWSER_ACCEPT, True),
        ("text/html;q=0.5, application/json", False),
        ("text/*, application/json;q=0.1", True),
        ("text/html;q=bogus, */*;q=0.1", False),
    ],
)
def test_prefers_html_ranks_html_against_json(accept: str, html: bool) -> None:
    assert prefers_html(accept) is html


def test_strategies_lists_the_strategy_files_and_the_default(
    service: tuple[str, str, httpx.Client], strategies_dir: Path
) -> None:
    _, api_prefix, client = service
    api_root = api_prefix.removesuffix("/trainings")
    response = client.get(f"{api_root}/strategies", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    files = sorted(p.stem for p in strategies_dir.glob("*.yaml"))
    assert response.json() == {"strategies": files, "default_strategy": "momentum_mlp"}


def test_the_page_runs_only_its_script_file_and_writes_no_html() -> None:
    page = (DASHBOARD_DIR / "index.html").read_text(encoding="utf-8")
    # No inline script or handler: the page keeps working under a script-src 'self' policy.
    assert re.findall(r"<script\b[^>]*>", page) == [
        '<script defer src="static/dashboard/dashboard.js">'
    ]
    assert not re.search(r"\son[a-z]+\s*=", page)
    script = (DASHBOARD_DIR / "dashboard.js").read_text(encoding="utf-8")
    # API strings reach the page as text only: no HTML parsing sink is ever assigned or called.
    assert not re.search(r"\.(innerHTML|outerHTML)\s*=[^=]", script)
    for sink in ("insertAdjacentHTML", "document.write", "eval(", "new Function", "DOMParser"):
        assert sink not in script, sink
