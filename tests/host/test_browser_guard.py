"""A web page cannot use a browser against the host service on loopback (issue 23, finding 4).

Against the real service process without a token, as it runs by default: a start sent
under an attacker's name (DNS rebinding) answered 202, a stop from another site's page
answered 200, the dashboard could be framed, and the trailing-slash redirect pointed
wherever the Host header said.
"""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.servers import HostServiceProcess
from tests.host.conftest import AppFactory
from tests.host.ktrdr_polling import ktrdr_host

# One real service process for the module, on loopback without a token (its default).
__all__ = ["ktrdr_host"]

REBINDING_NAME = "rebind.attacker.example"
BODY = {"symbol": "AAPL", "timeframe": "1h", "config": {"epochs": 1}}


def test_a_request_under_a_rebinding_name_is_refused(ktrdr_host: HostServiceProcess) -> None:
    port = ktrdr_host.url.rsplit(":", 1)[1]
    headers = {"Host": f"{REBINDING_NAME}:{port}"}

    start = httpx.post(f"{ktrdr_host.url}/trainings/start", json=BODY, headers=headers)
    listing = httpx.get(f"{ktrdr_host.url}/trainings", headers=headers)
    trainings = httpx.get(f"{ktrdr_host.url}/trainings").json()

    assert start.status_code == 400
    assert start.json()["error"] == "UntrustedHostError"
    assert "allowed_hosts" in start.json()["detail"]
    assert listing.status_code == 400
    assert trainings["total"] == 0  # nothing was started


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "LOCALHOST.", "[::1]", "host.docker.internal"]
)
def test_the_names_the_service_is_served_under_are_accepted(
    ktrdr_host: HostServiceProcess, host: str
) -> None:
    port = ktrdr_host.url.rsplit(":", 1)[1]
    response = httpx.get(f"{ktrdr_host.url}/trainings", headers={"Host": f"{host}:{port}"})
    assert response.status_code == 200, response.text


def test_a_state_change_from_another_sites_page_is_refused(ktrdr_host: HostServiceProcess) -> None:
    created = httpx.post(f"{ktrdr_host.url}/trainings/start", json={**BODY, "training_id": "mine"})
    assert created.status_code == 202, created.text

    cross_site = [
        httpx.post(
            f"{ktrdr_host.url}/trainings/mine/stop", headers={"Origin": "http://evil.example"}
        ),
        httpx.post(f"{ktrdr_host.url}/trainings/mine/stop", headers={"Origin": "null"}),
        httpx.post(
            f"{ktrdr_host.url}/trainings/start",
            json={**BODY, "training_id": "theirs"},
            headers={"Origin": "http://evil.example"},
        ),
    ]
    own_page = httpx.post(
        f"{ktrdr_host.url}/trainings/mine/stop", headers={"Origin": ktrdr_host.url}
    )

    assert [answer.status_code for answer in cross_site] == [403, 403, 403]
    assert cross_site[0].json()["error"] == "CrossSiteRequestError"
    assert httpx.get(f"{ktrdr_host.url}/trainings/theirs/status").status_code == 404
    assert own_page.status_code == 200  # the dashboard's own Stop button
    assert own_page.json()["stop_requested"] is True


def test_a_read_from_another_site_is_left_to_the_browser(ktrdr_host: HostServiceProcess) -> None:
    # Reads change nothing, and without CORS headers the page cannot see the answer.
    response = httpx.get(f"{ktrdr_host.url}/trainings", headers={"Origin": "http://evil.example"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("path", ["/", "/docs", "/trainings", "/health"])
def test_no_answer_may_be_framed(ktrdr_host: HostServiceProcess, path: str) -> None:
    response = httpx.get(f"{ktrdr_host.url}{path}", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_trailing_slash_redirect_keeps_to_this_server(ktrdr_host: HostServiceProcess) -> None:
    port = ktrdr_host.url.rsplit(":", 1)[1]
    response = httpx.get(
        f"{ktrdr_host.url}/trainings/?limit=5", headers={"Host": f"localhost:{port}"}
    )
    assert response.status_code == 307
    assert response.headers["location"] == "/trainings?limit=5"


def test_any_host_name_with_the_check_off_still_redirects_to_a_path(
    start_app: AppFactory,
) -> None:
    url, _ = start_app(allowed_hosts=["*"])
    response = httpx.get(f"{url}/trainings/", headers={"Host": REBINDING_NAME})
    assert response.status_code == 307
    assert response.headers["location"] == "/trainings"


def test_names_the_operator_adds_are_accepted(start_app: AppFactory) -> None:
    url, _ = start_app(
        allowed_hosts=["gpu-box.lan"], ktrdr_worker_endpoint_url="http://trainer.lan:5002"
    )
    for name in ("gpu-box.lan", "trainer.lan", "GPU-BOX.LAN:5002"):
        assert httpx.get(f"{url}/trainings", headers={"Host": name}).status_code == 200
    assert httpx.get(f"{url}/trainings", headers={"Host": "other.lan"}).status_code == 400
