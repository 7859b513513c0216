"""Serve the studio with uvicorn in this process (the one holding the warm SparkSession)."""

from __future__ import annotations

from typing import Any

import uvicorn

from segengine.studio.auth import check_bind


def make_server(app: Any, host: str, port: int, token: str | None, log_level: str = "warning") -> uvicorn.Server:
    """A uvicorn server for ``app`` on ``host:port``, after the bind check.

    Args:
        app: the studio app (:func:`segengine.studio.create_app`).
        host: the address to listen on.
        port: the port (0: any free one).
        token: the single-user token the app was built with, if any.
        log_level: uvicorn's log level.

    Returns:
        The server; ``.run()`` serves until interrupted.

    Raises:
        UnsafeStudioBind: ``host`` is not a loopback address and there is no token.
    """
    check_bind(host, token)
    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on"))
