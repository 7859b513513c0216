"""The ``segengine`` command line (click).

The group, its global options and :class:`~segengine.cli.base.Context` live in
:mod:`segengine.cli.base`; each capability owns a command module that registers its
commands on the group when imported. This package imports them all, so the imports go
one way: ``segengine.cli`` -> command modules -> ``segengine.cli.base``.
"""

from __future__ import annotations

# Importing a command module registers its commands on ``cli``.
from segengine.cli import (  # noqa: F401
    audience,
    data,
    destination,
    features,
    identity,
    insights,
    maintain,
    models,
    pipeline,
    recommend,
    segment,
    studio,
)
from segengine.cli.base import DATE, Context, cli, moved_command, pass_ctx

__all__ = ["DATE", "Context", "cli", "main", "moved_command", "pass_ctx"]


def main() -> None:  # console_scripts entry point
    cli(prog_name="segengine")
