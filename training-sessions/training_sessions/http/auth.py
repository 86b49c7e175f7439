"""The optional bearer token both services put in front of their APIs.

A service without a token answers everyone and must listen on loopback only
(:func:`is_loopback`, checked by both command lines); with one, every protected route
needs ``Authorization: Bearer <token>``, compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Request
from pydantic import AfterValidator, SecretStr


class AuthenticationError(Exception):
    """The request lacks a valid ``Authorization: Bearer <token>`` header (401)."""


def _blank_is_none(value: SecretStr | None) -> SecretStr | None:
    # An empty `..._API_TOKEN=` line in an env file means "no token", not "".
    if value is not None and not value.get_secret_value().strip():
        return None
    return value


# The type of a service's ``api_token`` setting.
ApiToken = Annotated[SecretStr | None, AfterValidator(_blank_is_none)]
TokenSource = Callable[[Request], SecretStr | None]


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def open_bind_refusal(
    prog: str, host: str, token: SecretStr | None, token_variable: str
) -> str | None:
    """The message a command prints to refuse ``host`` without a token; None when allowed."""
    if is_loopback(host) or token is not None:
        return None
    return (
        f"{prog}: refusing to listen on {host} without an API token; "
        f"set {token_variable} or bind 127.0.0.1"
    )


def check_bearer(authorization: str, expected: SecretStr | None) -> None:
    """Accept ``authorization`` when it carries ``expected`` (anything when there is none).

    Raises:
        AuthenticationError: missing or wrong token.
    """
    if expected is None:
        return
    scheme, _, supplied = authorization.partition(" ")
    # compare_digest: the time taken must not reveal how much of the token matched.
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        supplied.strip().encode(), expected.get_secret_value().encode()
    ):
        raise AuthenticationError("missing or invalid bearer token (Authorization: Bearer ...)")


def bearer_token_guard(token_of: TokenSource) -> Callable[[Request], Awaitable[None]]:
    """A route dependency that checks the token ``token_of(request)`` returns."""

    async def require_token(request: Request) -> None:
        check_bearer(request.headers.get("authorization", ""), token_of(request))

    return require_token
