"""``segengine studio``: a warm SparkSession behind an HTTP API and a browser UI.

Example::

    from segengine.studio import StudioSettings, create_app

    app = create_app(spark, lake, config, StudioSettings(default_user="ann"))
    # uvicorn.run(app, host="127.0.0.1", port=8765), or make_server(...).run()
"""

from __future__ import annotations

from segengine.studio.app import create_app
from segengine.studio.auth import DEFAULT_USER_HEADER, StudioSettings, check_bind, is_loopback
from segengine.studio.cache import CachedSnapshot, FeatureCache
from segengine.studio.server import make_server

__all__ = [
    "DEFAULT_USER_HEADER",
    "CachedSnapshot",
    "FeatureCache",
    "StudioSettings",
    "check_bind",
    "create_app",
    "is_loopback",
    "make_server",
]
