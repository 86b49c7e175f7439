"""What keeps a web page from using a browser against a service on this machine.

A page on any site can make its visitor's browser send requests to ``127.0.0.1:5002``.
Without a token that would be enough to read and steer every training, so both services
put :class:`BrowserGuardMiddleware` in front of every route:

- **Host** must be an IP address or a name the service is served under
  (:func:`served_host_names`). DNS rebinding points the attacker's own *name* at
  127.0.0.1 so that its scripts may read the answers; an address in the Host header is
  never such a name (the page's origin is then that address, which the browser guards).
- **Origin**, when a state-changing request (POST, PUT, PATCH, DELETE) carries one, must
  be the service's own: a page elsewhere cannot start, stop or delete a training. Clients
  that are not browsers (KTRDR, the proxy, curl) send no Origin and are not affected.
- Every answer forbids framing (``X-Frame-Options: DENY``, CSP ``frame-ancestors
  'none'``), so the dashboard's Stop and Resume buttons cannot be clickjacked, and
  forbids MIME sniffing.
- A redirect's ``Location`` never carries the Host header: Starlette's trailing-slash
  redirect is rewritten to a path on this server.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from training_sessions.http.errors import error_response
from training_sessions.http.host_names import ANY_HOST, host_name_of, is_ip_address
from training_sessions.http.request_logging import header_value

STATE_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
)


class UntrustedHostError(Exception):
    """The Host header names something this service is not served under (400)."""


class CrossSiteRequestError(Exception):
    """A state-changing request came from a page of another origin (403)."""


def check_host(host_header: str | None, names: frozenset[str]) -> None:
    """Raises UntrustedHostError unless the Host header is an address or one of ``names``."""
    if host_header is None or ANY_HOST in names:
        return  # no Host header: HTTP/1.0, never a browser
    name = host_name_of(host_header)
    if is_ip_address(name) or name in names:
        return
    raise UntrustedHostError(
        f"Host header {host_header[:100]!r} is not a name this service is served under; "
        "an operator can add it to the service's allowed_hosts setting"
    )


def check_origin(method: str, origin: str | None, host_header: str | None) -> None:
    """Raises CrossSiteRequestError for a state-changing request from another origin."""
    if method not in STATE_CHANGING_METHODS or origin is None:
        return
    own = (host_header or "").strip().lower()
    parts = urlsplit(origin.strip().lower())
    if parts.scheme in {"http", "https"} and own and parts.netloc == own:
        return
    raise CrossSiteRequestError(
        f"cross-site {method} refused: Origin {origin[:100]!r} is not this service's own"
    )


def relative_location(location: str, host_header: str | None) -> str:
    """``location`` as a path when it points at this server by its Host header."""
    parts = urlsplit(location)
    if not parts.netloc or host_header is None:
        return location
    if parts.netloc.lower() != host_header.strip().lower():
        return location
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


class BrowserGuardMiddleware:
    """Pure ASGI: Host and Origin checks, framing headers, Host-free redirects."""

    def __init__(self, app: ASGIApp, host_names: frozenset[str]) -> None:
        self.app = app
        self.host_names = host_names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = header_value(scope, b"host")
        try:
            check_host(host, self.host_names)
            check_origin(scope["method"], header_value(scope, b"origin"), host)
        except UntrustedHostError as exc:
            await error_response(400, str(exc), type(exc).__name__)(scope, receive, send)
            return
        except CrossSiteRequestError as exc:
            await error_response(403, str(exc), type(exc).__name__)(scope, receive, send)
            return

        async def send_guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers.setdefault(name, value)
                if 300 <= message["status"] < 400 and "location" in headers:
                    headers["location"] = relative_location(headers["location"], host)
            await send(message)

        await self.app(scope, receive, send_guarded)
