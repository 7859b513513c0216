"""The `segengine` command: --help everywhere, errors as one line with a non-zero exit."""

from __future__ import annotations

import click
from click.testing import CliRunner

from segengine.cli import cli


def _walk(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, cmd in group.commands.items():
        yield prefix + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from _walk(cmd, prefix + (name,))


def test_every_command_has_help_text():
    runner = CliRunner()
    paths = list(_walk(cli))
    assert len(paths) >= 5
    for path, cmd in paths:
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output
        assert (cmd.help or cmd.short_help or "").strip(), f"{' '.join(path)} has no help text"


def test_bad_config_key_is_one_line_and_exit_2():
    result = CliRunner().invoke(cli, ["--conf", "spark.mastr=local", "config"])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert lines == ["error: unknown configuration key spark.mastr (did you mean spark.master?)"]


def test_config_command_prints_resolved_yaml():
    result = CliRunner().invoke(cli, ["--conf", "features.cycle_months=3", "config"])
    assert result.exit_code == 0
    assert "cycle_months: 3" in result.output


def test_tables_command_lists_partitioning():
    result = CliRunner().invoke(cli, ["tables"])
    assert result.exit_code == 0
    line = next(ln for ln in result.output.splitlines() if ln.startswith("customer_features"))
    assert "snapshot_date" in line and "gold/customer_features" in line
