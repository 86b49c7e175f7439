"""What both services' ``serve`` commands check before uvicorn starts.

The settings must validate, and a non-loopback address needs a token; either
failure is printed as one message and the command exits with ``EXIT_USAGE``.
Nothing here imports torch, pandas or SQLAlchemy: refusals stay instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Protocol, TypeVar

from pydantic import SecretStr, ValidationError

from training_sessions.http.auth import open_bind_refusal

EXIT_USAGE = 2


class ServedSettings(Protocol):
    @property
    def host(self) -> str: ...

    @property
    def api_token(self) -> SecretStr | None: ...


SettingsT = TypeVar("SettingsT", bound=ServedSettings)


def address_overrides(args: argparse.Namespace) -> dict[str, object]:
    """``--host`` and ``--port`` as settings overrides (only those given)."""
    return {name: getattr(args, name) for name in ("host", "port") if getattr(args, name, None)}


def settings_to_serve(
    prog: str, build: Callable[[], SettingsT], token_variable: str
) -> SettingsT | None:
    """The settings ``build`` makes, or None after printing why the command must stop."""
    try:
        settings = build()
    except ValidationError as exc:
        print(f"{prog}: invalid configuration:\n{exc}", file=sys.stderr)
        return None
    refusal = open_bind_refusal(prog, settings.host, settings.api_token, token_variable)
    if refusal is not None:
        print(refusal, file=sys.stderr)
        return None
    return settings
