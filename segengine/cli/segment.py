"""`segengine` commands for segment (registered on import by segengine.cli)."""

from __future__ import annotations

from segengine.cli import cli, pass_ctx  # noqa: F401
