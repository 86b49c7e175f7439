"""KTRDR sends no Authorization header: its routes open only when the operator says so."""

from __future__ import annotations

import httpx

from tests.host.conftest import AppFactory

TOKEN = "s3cret-token-for-tests"


def test_ktrdr_routes_need_the_token_unless_opened(start_app: AppFactory) -> None:
    closed_url, _ = start_app(api_token=TOKEN)
    assert httpx.get(f"{closed_url}/training/sessions").status_code == 401
    assert httpx.get(f"{closed_url}/api/v1/operations/x").status_code == 401


def test_opened_ktrdr_routes_answer_without_a_token_and_ours_still_need_it(
    start_app: AppFactory,
) -> None:
    url, _ = start_app(api_token=TOKEN, ktrdr_routes_without_token=True)

    assert httpx.get(f"{url}/training/sessions").status_code == 200
    assert httpx.get(f"{url}/api/v1/operations/x").status_code == 404
    assert httpx.post(f"{url}/backend-shutdown").json() == {"acknowledged": True}
    assert httpx.get(f"{url}/trainings").status_code == 401
