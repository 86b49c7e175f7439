"""The optional bearer token both services put in front of their APIs.

A service without a token answers everyone and must listen on loopback only
(:func:`is_loopback`, checked by both command lines); with one, every protected route
needs ``Authorization: Bearer <token>``, compared in constant time. A client may
also be admitted by its address (:func:`client_in`), for callers that cannot send a
token (KTRDR: see the host's ``ktrdr_clients``).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any

from fastapi import Request
from pydantic import AfterValidator, BeforeValidator, IPvAnyNetwork, SecretStr
from pydantic_settings import NoDecode


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
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def comma_separated(value: Any) -> Any:
    """A list setting from one variable: ``a, b`` or JSON ``["a", "b"]``; empty is none."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        return json.loads(text)
    return [item.strip() for item in text.split(",") if item.strip()]


# A setting of client addresses: IPs or networks (``10.0.0.5``, ``172.17.0.0/16``).
ClientNetworks = Annotated[list[IPvAnyNetwork], NoDecode, BeforeValidator(comma_separated)]
# A setting of names, one variable with commas (``a.example, b.example``) or a YAML list.
NameList = Annotated[list[str], NoDecode, BeforeValidator(comma_separated)]


def client_in(address: str | None, networks: Sequence[Network]) -> bool:
    """True when the client ``address`` lies in one of ``networks``."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # a Unix socket path or a test client's name
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # an IPv4 client on a dual-stack socket
    return any(ip.version == network.version and ip in network for network in networks)


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
