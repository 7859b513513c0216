"""The ``segengine`` group, its global options, :class:`Context` and the shared option types.

The command modules of :mod:`segengine.cli` decorate :data:`cli` here; the package imports
them, so the imports go one way: ``segengine.cli`` -> command modules -> ``base``.

Every command shares the global options ``--env``, ``--config`` and ``--conf``; the
SparkSession is built only when a command needs it.

Every error is one line on stderr, ``error: …``, and no traceback: a
:class:`SegengineError` or a usage error (bad date, missing file, unknown option value,
unknown command, with a "did you mean") exits 2; anything unexpected exits 1 and says
to rerun with ``-v`` for the traceback. Dates are read by :data:`DATE` (one parser,
:func:`segengine.dates.parse_date`).
"""

from __future__ import annotations

import datetime as dt
import difflib
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from segengine.dates import DATE_FORM, date_problem, parse_date
from segengine.errors import SegengineError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from segengine.config import Config
    from segengine.lake import Lake


class Context:
    """Lazily built configuration, SparkSession and Lake for one command."""

    def __init__(self, env: str | None, config_files: tuple[str, ...], overrides: tuple[str, ...]):
        self.env = env
        self.config_files = config_files
        self.overrides = overrides
        self._config: Config | None = None
        self._spark: SparkSession | None = None
        self._lake: Lake | None = None
        # Only the commands that load data may create a missing warehouse folder.
        self.may_create_warehouse = False

    @property
    def config(self) -> Config:
        if self._config is None:
            from segengine.config import load_config

            self._config = load_config(self.env, self.config_files, self.overrides)
        return self._config

    @property
    def spark(self) -> SparkSession:
        if self._spark is None:
            from segengine.session import build_spark

            if not self.may_create_warehouse:
                self.require_warehouse()

            self._spark = build_spark(self.config)
        return self._spark

    @property
    def lake(self) -> Lake:
        if self._lake is None:
            from segengine.lake import Lake

            self._lake = Lake.open(self.spark, self.config)
        return self._lake

    def require_warehouse(self) -> None:
        """Refuse a warehouse folder that does not exist (before Spark or MLflow create it)."""
        from segengine.lake.warehouse import require_warehouse

        require_warehouse(self.config)


pass_ctx = click.make_pass_decorator(Context)


class DateType(click.ParamType):
    """A ``--date`` option: a real day written YYYY-MM-DD (see :func:`segengine.dates.parse_date`)."""

    name = "date"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return DATE_FORM

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.date:
        problem = date_problem(value)
        if problem is not None:
            self.fail(f"expected {problem}", param, ctx)
        return parse_date(value)


DATE = DateType()

UNEXPECTED_EXIT_CODE = 1


def _first_line(text: object) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return lines[0] if lines else ""


def _one_line(text: object) -> str:
    return " ".join(ln.strip() for ln in str(text).splitlines() if ln.strip())


def _usage_line(exc: click.ClickException) -> str:
    where = getattr(exc, "ctx", None)
    prefix = f"{where.command_path}: " if where is not None else ""
    return f"error: {prefix}{_first_line(exc.format_message())}"


class SegengineGroup(click.Group):
    """Every error as one line on stderr, no traceback; "did you mean" for command names.

    Sub-groups (``segengine audience`` …) are of this class too (``group_class``).
    """

    group_class = type

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            visible = sorted(n for n, c in self.commands.items() if not c.hidden)
            close = difflib.get_close_matches(name, visible, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else f" (commands: {', '.join(visible)})"
            raise click.UsageError(f"no such command {name!r}{hint}", ctx)
        return super().resolve_command(ctx, args)

    def main(  # type: ignore[override]
        self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any
    ) -> Any:
        if not extra.pop("standalone_mode", True):
            return super().main(args, prog_name, standalone_mode=False, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        try:
            code = super().main(argv, prog_name, standalone_mode=False, **extra)
        except click.exceptions.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(UNEXPECTED_EXIT_CODE)
        except click.ClickException as exc:
            click.echo(_usage_line(exc), err=True)
            sys.exit(exc.exit_code)
        except SegengineError as exc:
            click.echo(f"error: {_one_line(exc)}", err=True)
            sys.exit(exc.exit_code)
        except BrokenPipeError:
            # `segengine … | head` closed the pipe: nothing to say (as click's own main).
            from click.utils import PacifyFlushWrapper

            sys.stdout = PacifyFlushWrapper(sys.stdout)
            sys.stderr = PacifyFlushWrapper(sys.stderr)
            sys.exit(UNEXPECTED_EXIT_CODE)
        except Exception as exc:  # noqa: BLE001 - the last resort: one line, not a traceback
            if "-v" in argv or "--verbose" in argv:
                raise
            click.echo(
                f"error: unexpected {type(exc).__name__}: {_first_line(exc)} (rerun with -v for the traceback)",
                err=True,
            )
            sys.exit(UNEXPECTED_EXIT_CODE)
        sys.exit(code if isinstance(code, int) else 0)


@click.group("segengine", cls=SegengineGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    from segengine.session import quiet_python_logs

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    quiet_python_logs(verbose)
    ctx.obj = Context(env, config_files, overrides)


@cli.command("config")
@click.option(
    "--schema",
    is_flag=True,
    help="Print the JSON schema of the configuration (every key, its type, default, choices and meaning) instead.",
)
@pass_ctx
def show_config(ctx: Context, schema: bool) -> None:
    """Print the resolved configuration as YAML."""
    import json

    import yaml

    from segengine.config import Config

    if schema:
        # The schema is the same whatever the overlays: no config is loaded for it.
        click.echo(json.dumps(Config.model_json_schema(), indent=2))
        return
    click.echo(yaml.safe_dump(ctx.config.model_dump(), sort_keys=False))


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
