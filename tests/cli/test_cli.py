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


def test_config_schema_prints_the_json_schema_even_when_the_config_is_bad():
    import json

    result = CliRunner().invoke(cli, ["--conf", "spark.mastr=local", "config", "--schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    assert schema["title"] == "Config"
    assert schema["$defs"]["ClvConfig"]["properties"]["algorithm"]["enum"] == ["gbt", "rf", "bgnbd"]
    assert schema["$defs"]["FeaturesConfig"]["properties"]["cycle_months"]["default"] == 6


def test_tables_command_lists_partitioning():
    result = CliRunner().invoke(cli, ["tables"])
    assert result.exit_code == 0
    line = next(ln for ln in result.output.splitlines() if ln.startswith("customer_features"))
    assert "snapshot_date" in line and "gold/customer_features" in line


def _options(path: tuple[str, ...]) -> set[str]:
    cmd: click.Command = cli
    for name in path:
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[name]
    return {opt for p in cmd.params for opt in (p.opts if isinstance(p, click.Option) else [p.name])}


def test_train_recommendations_and_audience_lookalike_are_subcommands():
    assert {"segments", "clv", "recommendations", "propensity"} <= set(cli.commands["train"].commands)
    assert _options(("train", "propensity")) == {"--date", "--force-promote"}
    assert _options(("train", "recommendations")) == {"--date", "--no-evaluate", "--force-promote"}
    assert _options(("train", "segments")) == _options(("train", "clv")) == {"--date", "--force-promote"}
    assert _options(("models", "promote")) == {"name", "--version", "--alias"}
    assert "lookalike" in cli.commands["audience"].commands
    assert _options(("audience", "lookalike")) == {"seed", "--size", "--by", "--date", "--name", "--owner"}
    for path in (("train", "recommendations"), ("audience", "lookalike")):
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, result.output


def test_old_spellings_say_where_the_command_went_and_exit_2():
    runner = CliRunner()
    cases = {
        ("train-recommendations", "--date", "2025-06-30", "--no-evaluate"): (
            "`segengine train-recommendations` is now `segengine train recommendations`"
        ),
        ("audience-lookalike", "High value", "--size", "5", "--by", "monetary", "--date", "2025-06-30"): (
            "`segengine audience-lookalike` is now `segengine audience lookalike`"
        ),
        ("train-recommendations",): "`segengine train-recommendations` is now `segengine train recommendations`",
    }
    for args, line in cases.items():
        result = runner.invoke(cli, list(args))
        assert result.exit_code == 2, (args, result.output)
        assert result.output.splitlines() == [line]
    # Hidden from the command list: only the new spellings are offered.
    listing = runner.invoke(cli, ["--help"]).output
    assert "train-recommendations" not in listing and "audience-lookalike" not in listing


def test_an_unexpected_error_is_one_line_exit_1_and_v_shows_the_traceback(monkeypatch):
    import segengine.features.catalog

    def boom(fmt):
        raise RuntimeError("boom\nat some depth")

    monkeypatch.setattr(segengine.features.catalog, "as_rows", boom)
    result = CliRunner().invoke(cli, ["features", "catalog"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["error: unexpected RuntimeError: boom (rerun with -v for the traceback)"]
    verbose = CliRunner().invoke(cli, ["-v", "features", "catalog"])
    assert isinstance(verbose.exception, RuntimeError)


def test_a_usage_error_names_the_command_in_one_line():
    result = CliRunner().invoke(cli, ["segment", "count", "x.yaml"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["error: segengine segment count: Missing option '--date'."]


def test_a_closed_pipe_is_a_quiet_exit_1(monkeypatch):
    import segengine.features.catalog

    def closed(fmt):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(segengine.features.catalog, "as_rows", closed)
    result = CliRunner().invoke(cli, ["features", "catalog"])
    assert result.exit_code == 1 and result.stderr == ""
