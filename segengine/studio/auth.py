"""Who is asking, and who may ask: the studio's settings, bind check and request guard.

Two ways to run:

* **Behind a proxy (or alone on a laptop)**: the server listens on a loopback address
  only; the deployment's proxy authenticates people and passes the user name in a header
  (``X-Segengine-User`` by default). A request without the header acts as the
  configured default user (the login name of whoever started the studio).
* **Single-user token**: with ``token`` set every request (API, pages, static files,
  OpenAPI) needs ``Authorization: Bearer <token>`` and acts as the default user; only
  then may the server listen on a non-loopback address.

The guard also bounds request bodies (a POST must say its ``Content-Length``, and no
more than ``max_body_bytes``) and, when ``allowed_hosts`` is set (the command sets the
loopback names for a loopback bind), refuses a ``Host`` header naming anything else.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request

from segengine.errors import UnsafeStudioBind

DEFAULT_USER_HEADER = "X-Segengine-User"
LOOPBACK_NAMES = ("localhost",)
MAX_USER_CHARS = 128


@dataclass(frozen=True)
class StudioSettings:
    """How the studio authenticates and bounds requests.

    Attributes:
        user_header: the header the proxy sets to the acting user's name.
        token: the single-user bearer token (None: no token, loopback only).
        default_user: the acting user when no header is given, and always with a token.
        check_seconds: how often the feature cache looks for a newer snapshot.
        max_body_bytes: the largest request body accepted.
        allowed_hosts: the names a request's ``Host`` header may carry (port aside);
            None accepts any. Against DNS rebinding: a web page whose own name resolves to
            127.0.0.1 would otherwise reach a loopback studio as the default user.
    """

    user_header: str = DEFAULT_USER_HEADER
    token: str | None = None
    default_user: str | None = None
    check_seconds: float = 30.0
    max_body_bytes: int = 64 * 1024
    allowed_hosts: tuple[str, ...] | None = None


def is_loopback(host: str) -> bool:
    """True for ``localhost``, ``127.0.0.0/8`` and ``::1``."""
    if host.strip().lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(host_header: str) -> str:
    """``127.0.0.1:8765`` -> ``127.0.0.1``, ``[::1]:8765`` -> ``::1`` (lower case)."""
    text = host_header.strip().lower()
    if text.startswith("["):
        return text[1 : text.find("]")] if "]" in text else text
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


def default_allowed_hosts(host: str, extra: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """The ``Host`` names to accept when listening on ``host``: the loopback names for a
    loopback bind, plus ``extra`` (a proxy that passes on its public name); None (any)
    for a non-loopback bind without ``extra`` (the token guards it)."""
    if is_loopback(host):
        return ("127.0.0.1", "localhost", "::1", *extra)
    return (host_name(host), *extra) if extra else None


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token.

    Raises:
        UnsafeStudioBind: ``host`` is not a loopback address and ``token`` is empty.
    """
    if not is_loopback(host) and not token:
        raise UnsafeStudioBind(
            f"--host {host}: the studio listens on a non-loopback address only with --token "
            "(or SEGENGINE_STUDIO_TOKEN); bind 127.0.0.1 behind your proxy otherwise"
        )


def acting_user(request: Request) -> str:
    """The user a request acts as (a FastAPI dependency).

    Raises:
        HTTPException: 401 when there is no user at all, 400 when the header's value is
            not a plain name (empty, too long, control characters).
    """
    settings: StudioSettings = request.app.state.studio.settings
    if settings.token:
        user = settings.default_user
    else:
        header = request.headers.get(settings.user_header)
        user = settings.default_user if header is None else header.strip()
        if header is not None and (
            not user or len(user) > MAX_USER_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in user)
        ):
            raise HTTPException(
                400,
                f"header {settings.user_header}: expected a user name of 1 to {MAX_USER_CHARS} printable characters",
            )
    if not user:
        raise HTTPException(401, f"header {settings.user_header}: missing (who is asking?)")
    return user


class RequestGuard:
    """ASGI middleware: the bearer token (when set) and the body size of every request."""

    def __init__(self, app: Any, settings: StudioSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        problem = self._problem(scope["method"], headers)
        if problem is None:
            await self.app(scope, receive, send)
            return
        status, message, extra = problem
        body = json.dumps({"detail": message, "problems": [message]}).encode()
        head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": body})

    def _problem(self, method: str, headers: dict[str, str]) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        allowed = self.settings.allowed_hosts
        if allowed is not None:
            name = host_name(headers.get("host", ""))
            if name not in {h.lower() for h in allowed}:
                return 400, f"header Host: {name!r} is not a name this studio answers to (see --allowed-host)", []
        token = self.settings.token
        if token:
            given = headers.get("authorization", "")
            expected = f"Bearer {token}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return 401, "header Authorization: expected Bearer <token>", [(b"www-authenticate", b"Bearer")]
        if method in ("POST", "PUT", "PATCH"):
            length = headers.get("content-length")
            if length is None:
                if "chunked" in headers.get("transfer-encoding", ""):
                    return 411, "header Content-Length: required (chunked request bodies are refused)", []
                return None
            if not length.isdigit():
                return 400, f"header Content-Length: expected a number of bytes, got {length!r}", []
            if int(length) > self.settings.max_body_bytes:
                return (
                    413,
                    f"request body: {int(length)} bytes, more than the limit of {self.settings.max_body_bytes}",
                    [],
                )
        return None
