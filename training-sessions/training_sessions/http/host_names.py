"""The names a service is served under: what its Host header may say.

Kept apart from the middleware (``browser_guard``) so that the settings classes can
compute them without loading what answering requests needs.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

ANY_HOST = "*"
# Every service answers to this name: a browser on this machine.
LOOPBACK_NAMES = ("localhost",)
WILDCARD_ADDRESSES = frozenset({"0.0.0.0", "::", ""})


def host_name_of(host_header: str) -> str:
    """The name or address of a Host header without its port, lower case, no final dot."""
    value = host_header.strip().lower()
    if value.startswith("["):  # [::1]:5002
        return value[1 : value.find("]")] if "]" in value else value
    name, colon, port = value.rpartition(":")
    if colon and port.isdigit() and ":" not in name:
        value = name
    return value.rstrip(".")


def is_ip_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def served_host_names(
    bind_host: str, configured: Iterable[str], *urls: str | None
) -> frozenset[str]:
    """The names a service accepts in the Host header (IP addresses are always accepted).

    Args:
        bind_host: the address it listens on; a name there is accepted, and a wildcard
            address (0.0.0.0, ::) adds this machine's host name.
        configured: the operator's extra names (``*`` turns the check off).
        urls: URLs others reach the service at (their host names are accepted).
    """
    names = {*LOOPBACK_NAMES, *(host_name_of(name) for name in configured if name.strip())}
    if bind_host in WILDCARD_ADDRESSES:
        names.add(host_name_of(socket.gethostname()))
    else:
        names.add(host_name_of(bind_host))
    for url in urls:
        if url and (host := urlsplit(url).hostname):
            names.add(host_name_of(host))
    return frozenset(name for name in names if name and not is_ip_address(name))
