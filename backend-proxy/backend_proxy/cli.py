"""``backend-proxy``: serve the backend (training router with CPU fallback)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError
from training_sessions.http.auth import open_bind_refusal

from backend_proxy.config import Settings

EXIT_USAGE = 2


def serve(args: argparse.Namespace) -> int:
    """Run the backend under uvicorn until SIGINT/SIGTERM."""
    overrides: dict[str, object] = {}
    if args.host is not None:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if args.config is not None:
        overrides["host_service_config_file"] = args.config
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        print(f"backend-proxy: invalid configuration:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    refusal = open_bind_refusal(
        "backend-proxy", settings.host, settings.api_token, "BACKEND_API_TOKEN"
    )
    if refusal is not None:
        print(refusal, file=sys.stderr)
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
