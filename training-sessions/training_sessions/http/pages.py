"""The browser pages both services serve, from files shipped in the packages.

``GET /`` is the dashboard for a browser and the service's identity as JSON for API
clients (KTRDR asks ``/`` who answers); ``/docs`` and ``/redoc`` load their assets from
the ``fastapi_offline`` package instead of a CDN. The app must be built with
``docs_url=None, redoc_url=None`` so these routes replace FastAPI's own.
"""

from __future__ import annotations

import html
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from training_sessions.contract import ServiceIdentity

DASHBOARD_DIR = Path(__file__).parent / "dashboard"
DOCS_ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
STATIC_PREFIX = "/static"

# Only these names are served: a request can never reach another file.
_ASSETS: dict[str, dict[str, tuple[Path, str]]] = {
    "dashboard": {
        "dashboard.js": (DASHBOARD_DIR / "dashboard.js", "text/javascript"),
        "dashboard.css": (DASHBOARD_DIR / "dashboard.css", "text/css"),
    },
    "docs": {
        "swagger-ui-bundle.js": (DOCS_ASSETS_DIR / "swagger-ui-bundle.js", "text/javascript"),
        "swagger-ui.css": (DOCS_ASSETS_DIR / "swagger-ui.css", "text/css"),
        "redoc.standalone.js": (DOCS_ASSETS_DIR / "redoc.standalone.js", "text/javascript"),
        "favicon.png": (DOCS_ASSETS_DIR / "favicon.png", "image/png"),
    },
}


def _quality(accept: str, media_type: str) -> float:
    """The q value ``accept`` gives ``media_type`` (its most specific matching range)."""
    kind = media_type.split("/")[0]
    best: tuple[int, float] = (-1, 0.0)
    for part in accept.split(","):
        media_range, *params = (piece.strip() for piece in part.split(";"))
        specificity = {media_type: 2, f"{kind}/*": 1, "*/*": 0}.get(media_range.lower())
        if specificity is None or specificity < best[0]:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best = (specificity, q)
    return best[1]


def prefers_html(accept: str) -> bool:
    """True when ``accept`` ranks text/html above JSON (a browser), False for API clients."""
    return _quality(accept, "text/html") > _quality(accept, "application/json")


def _fill(template: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        template = template.replace("{{" + name + "}}", html.escape(value))
    return template


def create_pages_router(*, service: str, api_prefix: str) -> APIRouter:
    """``/`` (dashboard or identity), its assets, and offline ``/docs`` and ``/redoc``.

    Args:
        service: the name ``GET /`` answers with, e.g. ``training-host``; the version is the app's.
        api_prefix: where the page finds the training routes (``/trainings``).
    """
    router = APIRouter()
    template = (DASHBOARD_DIR / "index.html").read_text(encoding="utf-8")
    docs = f"{STATIC_PREFIX}/docs"

    @router.get(
        "/",
        summary="Dashboard (browsers) or the service's identity (JSON)",
        response_model=ServiceIdentity,
        responses={200: {"content": {"text/html": {}}}},
    )
    async def read_root(request: Request) -> Response:
        """The dashboard when the client prefers HTML, else who this service is."""
        headers = {"Vary": "Accept"}
        version = str(request.app.version)
        if prefers_html(request.headers.get("accept", "")):
            values = {"service": service, "api_prefix": api_prefix, "version": version}
            return HTMLResponse(_fill(template, values), headers=headers)
        identity = ServiceIdentity(service=service, version=version, status="ok")
        return JSONResponse(identity.model_dump(), headers=headers)

    @router.get(STATIC_PREFIX + "/{group}/{name}", include_in_schema=False)
    async def read_static_asset(group: str, name: str) -> FileResponse:
        entry = _ASSETS.get(group, {}).get(name)
        if entry is None:
            raise HTTPException(status_code=404, detail=f"no asset '{group}/{name}'")
        path, media_type = entry
        return FileResponse(path, media_type=media_type)

    @router.get("/docs", include_in_schema=False)
    async def read_swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{request.app.openapi_url}",
            title=f"{request.app.title} - Swagger UI",
            swagger_js_url=f"{root}{docs}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{docs}/swagger-ui.css",
            swagger_favicon_url=f"{root}{docs}/favicon.png",
        )

    @router.get("/redoc", include_in_schema=False)
    async def read_redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{request.app.openapi_url}",
            title=f"{request.app.title} - ReDoc",
            redoc_js_url=f"{root}{docs}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{docs}/favicon.png",
            with_google_fonts=False,
        )

    return router
