"""The ``segengine`` command line (click).

Every command shares the global options ``--env``, ``--config`` and ``--conf``; the
SparkSession is built only when a command needs it. A :class:`SegengineError` is
printed as one line and the exit code is non-zero.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from segengine.errors import SegengineError


class Context:
    """Lazily built configuration, SparkSession and Lake for one command."""

    def __init__(self, env: str | None, config_files: tuple[str, ...], overrides: tuple[str, ...]):
        self.env = env
        self.config_files = config_files
        self.overrides = overrides
        self._config: Any = None
        self._spark: Any = None
        self._lake: Any = None

    @property
    def config(self) -> Any:
        if self._config is None:
            from segengine.config import load_config

            self._config = load_config(self.env, self.config_files, self.overrides)
        return self._config

    @property
    def spark(self) -> Any:
        if self._spark is None:
            from segengine.session import build_spark

            self._spark = build_spark(self.config)
        return self._spark

    @property
    def lake(self) -> Any:
        if self._lake is None:
            from segengine.lake import Lake

            self._lake = Lake.open(self.spark, self.config)
        return self._lake


pass_ctx = click.make_pass_decorator(Context)


class SegengineGroup(click.Group):
    """Turns SegengineError into one clear line and a non-zero exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SegengineError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=SegengineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--env", envvar="SEGENGINE_ENV", default=None, help="Config overlay: local (default) or cluster.")
@click.option("--config", "config_files", multiple=True, type=click.Path(), help="Extra YAML config file(s).")
@click.option(
    "--conf",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one config key, e.g. spark.master=local[2].",
)
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
@click.pass_context
def cli(
    ctx: click.Context, env: str | None, config_files: tuple[str, ...], overrides: tuple[str, ...], verbose: bool
) -> None:
    """segengine: customer segmentation on your own Spark and Delta Lake."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    ctx.obj = Context(env, config_files, overrides)


@cli.command("config")
@pass_ctx
def show_config(ctx: Context) -> None:
    """Print the resolved configuration as YAML."""
    import yaml

    click.echo(yaml.safe_dump(ctx.config.to_dict(), sort_keys=False))


@cli.command("tables")
@pass_ctx
def show_tables(ctx: Context) -> None:
    """List the named tables and where they live."""
    from segengine.lake import TABLES

    for spec in TABLES.values():
        rel = ctx.config.tables.get(spec.name) or spec.path
        parts = ",".join(spec.partition_by) or "-"
        click.echo(f"{spec.name:20s} {spec.layer:7s} {parts:14s} {rel}")


MOVED_EXIT_CODE = 2


def moved_command(old: str, new: str) -> click.Command:
    """Register ``segengine OLD`` (hidden) to say it is now ``segengine NEW`` and exit 2.

    Whatever arguments follow are accepted and ignored, so an old script fails with that
    one line rather than with a usage error about its options.
    """

    @cli.command(
        old,
        hidden=True,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        help=f"Renamed: use `segengine {new}`.",
    )
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def _moved(args: tuple[str, ...]) -> None:
        click.echo(f"`segengine {old}` is now `segengine {new}`", err=True)
        sys.exit(MOVED_EXIT_CODE)

    return _moved


def _register() -> None:
    # Each capability owns its command module; importing registers its commands.
    from segengine.cli import (  # noqa: F401
        audience,
        data,
        features,
        insights,
        maintain,
        models,
        pipeline,
        recommend,
        segment,
    )


_register()


def main() -> None:  # console_scripts entry point
    cli(prog_name="segengine")
