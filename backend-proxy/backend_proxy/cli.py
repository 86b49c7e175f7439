"""``backend-proxy``: serve the backend (training router with CPU fallback)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from training_sessions.http.serving import EXIT_USAGE, address_overrides, settings_to_serve

from backend_proxy.config import Settings


def serve(args: argparse.Namespace) -> int:
    """Run the backend under uvicorn until SIGINT/SIGTERM."""
    overrides = address_overrides(args)
    if args.config is not None:
        overrides["host_service_config_file"] = args.config
    settings = settings_to_serve(
        "backend-proxy",
        lambda: Settings(**overrides),  # type: ignore[arg-type]
        "BACKEND_API_TOKEN",
    )
    if settings is None:
        return EXIT_USAGE
    # Imported late: a bad configuration is refused before torch loads.
    import uvicorn
    from training_sessions.http.request_logging import uvicorn_log_config

    from backend_proxy.app import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=uvicorn_log_config("info"),
        # The client address decides who may call (ktrdr_clients): never take it from a header.
        proxy_headers=False,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backend-proxy",
        description=(
            "The backend's training API: sends each training to the training host service "
            "(GPU) behind a circuit breaker, or runs it here on CPU when the host is off, "
            "down or failing. Configured by USE_TRAINING_HOST_SERVICE, "
            "TRAINING_HOST_SERVICE_URL and BACKEND_* variables (see docs/proxy.md)."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve_parser = commands.add_parser(
        "serve", help="run the backend HTTP API", description="Run the backend HTTP API."
    )
    serve_parser.add_argument("--host", help="address to bind (default BACKEND_HOST, 127.0.0.1)")
    serve_parser.add_argument(
        "--port", type=int, help="port to listen on (default BACKEND_PORT, 8000)"
    )
    serve_parser.add_argument(
        "--config",
        help="YAML file with the training_host_service section "
        "(default config/environment/training_host_service_enabled.yaml)",
    )
    serve_parser.set_defaults(handler=serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
