"""``training-host``: serve the API, or install it as a launchd/systemd service."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from training_sessions.http.serving import EXIT_USAGE, address_overrides, settings_to_serve

from training_host import __version__, service_install
from training_host.config import CONFIG_FILE_ENV, Settings


def serve(args: argparse.Namespace) -> int:
    """Run the service under uvicorn until SIGINT/SIGTERM (sessions checkpoint on the way out)."""
    if args.config is not None:
        # The settings class reads its file path from the environment: one way in.
        os.environ[CONFIG_FILE_ENV] = str(args.config)
    overrides = address_overrides(args)
    if args.home is not None:
        overrides["home"] = args.home
    settings = settings_to_serve(
        "training-host",
        lambda: Settings(**overrides),  # type: ignore[arg-type]
        "TRAINING_HOST_API_TOKEN",
    )
    if settings is None:
        return EXIT_USAGE
    # Imported late: refusing a bad configuration should not wait for torch to load.
    import uvicorn
    from training_sessions.http.request_logging import uvicorn_log_config

    from training_host.errors import ExecutorUnavailableError
    from training_host.main import create_app

    try:
        app = create_app(settings)
    except ExecutorUnavailableError as exc:
        print(f"training-host: {exc}", file=sys.stderr)
        return EXIT_USAGE
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=uvicorn_log_config(settings.log_level),
        # The client address decides who may call (ktrdr_clients): never take it from a header.
        proxy_headers=False,
        # The lifespan checkpoints running sessions; give it the grace period plus a margin.
        timeout_graceful_shutdown=int(settings.stop_grace_seconds) + 5,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="training-host",
        description="Host-native training service: runs training sessions on this machine's GPU.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve_parser = subparsers.add_parser(
        "serve",
        help="run the HTTP API (default 127.0.0.1:5002)",
        description="Run the HTTP API. Settings come from TRAINING_HOST_* variables and the "
        "YAML config file; the options below override them.",
    )
    serve_parser.add_argument("--host", help="address to bind (non-loopback needs an API token)")
    serve_parser.add_argument("--port", type=int, help="TCP port (default 5002)")
    serve_parser.add_argument(
        "--config", help=f"YAML config file (default: ${CONFIG_FILE_ENV} or config/...yaml)"
    )
    serve_parser.add_argument(
        "--home",
        help="one folder for everything the service keeps: state, data, models, checkpoints, "
        "logs and strategies (default $TRAINING_HOST_HOME); a folder set on its own still wins",
    )
    serve_parser.set_defaults(func=serve)
    service_install.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``training-host`` command."""
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
