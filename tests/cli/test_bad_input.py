"""Every command of the CLI, given hostile input: one line on stderr, no traceback, exit 2.

The rows are keyed by command path and the test lists the commands from the click
groups, so a command added without a row here fails :func:`test_every_command_has_a_row`.
Each case runs against a fresh, empty warehouse folder (or one that does not exist) and
checks that nothing was written there.
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from segengine.cli import cli

BAD_DATE = "2025-02-30"
DATE_ERROR = "Invalid value for '--date': expected a date YYYY-MM-DD, got '2025-02-30' (day is out of range"
NO_WAREHOUSE = "missing-warehouse"  # replaced by a folder that does not exist
WAREHOUSE_ERROR = "does not exist (give the right one with --conf warehouse=PATH"
D = "2025-06-30"

# Placeholders in the arguments: {missing} a file that does not exist, {broken} a YAML
# file with a syntax error, {ghost} a segment using an unknown segment, {typo} a segment
# with a misspelt attribute, {ok} a valid segment, {ids} a CSV of ids, {out} a folder.
# Each case: (arguments, a part of the one error line). NO_WAREHOUSE as the first
# argument points the command at a warehouse that does not exist.
CASES: dict[tuple[str, ...], list[tuple[tuple[str, ...], str]]] = {
    ("config",): [(("--bogus",), "No such option: --bogus")],
    ("tables",): [(("--bogus",), "No such option: --bogus")],
    ("audience", "create"): [
        (("{missing}",), "'{missing}' does not exist"),
        (("{broken}",), "{broken} line 4: not valid YAML/JSON"),
        (("{typo}",), "where.attr: unknown attribute 'monetry' (did you mean monetary"),
        # A saved audience refers to saved audiences only (none here), not to files.
        (("{ghost}",), "{ghost}: where.in_segment: unknown segment 'loyal_customerz'"),
        (("{ok}", "--date", BAD_DATE), DATE_ERROR),
        (("{ok}", "--kind", "weekly"), "Invalid value for '--kind': 'weekly' is not one of 'static', 'dynamic'"),
        ((NO_WAREHOUSE, "{ok}"), WAREHOUSE_ERROR),
    ],
    ("audience", "list"): [
        (("--sort", "colour"), "Invalid value for '--sort': 'colour' is not one of"),
        ((NO_WAREHOUSE,), WAREHOUSE_ERROR),
    ],
    ("audience", "show"): [(("nope",), "no audience 'nope'"), ((NO_WAREHOUSE, "x"), WAREHOUSE_ERROR)],
    ("audience", "preview"): [(("nope",), "no audience 'nope'"), ((NO_WAREHOUSE, "x"), WAREHOUSE_ERROR)],
    ("audience", "count"): [(("nope",), "no audience 'nope'"), ((NO_WAREHOUSE, "x"), WAREHOUSE_ERROR)],
    ("audience", "refresh"): [
        (("--date", BAD_DATE), DATE_ERROR),
        ((NO_WAREHOUSE, "--date", D), WAREHOUSE_ERROR),
    ],
    ("audience", "upload"): [
        (("{missing}", "--name", "x"), "'{missing}' does not exist"),
        (("{ids}", "--name", "x", "--id-type", "fax"), "Invalid value for '--id-type': 'fax' is not one of"),
        (("{ids}", "--name", "x", "--date", BAD_DATE), DATE_ERROR),
        ((NO_WAREHOUSE, "{ids}", "--name", "x"), WAREHOUSE_ERROR),
    ],
    ("audience", "top"): [
        (("nope", "-n", "5", "--by", "monetary", "--name", "t", "--date", BAD_DATE), DATE_ERROR),
        (("x", "-n", "5", "--by", "monetary", "--name", "t", "--date", D, "--order", "up"), "'up' is not one of"),
        ((NO_WAREHOUSE, "x", "-n", "5", "--by", "monetary", "--name", "t", "--date", D), WAREHOUSE_ERROR),
    ],
    ("audience", "combine"): [
        (("union", "a", "b", "--name", "c"), "'union' is not one of 'intersect', 'merge', 'exclude'"),
        (("merge", "a", "b", "--name", "c"), "no audience 'a'"),
        (("merge", "a", "b", "--name", "c", "--date", BAD_DATE), DATE_ERROR),
        ((NO_WAREHOUSE, "merge", "a", "b", "--name", "c"), WAREHOUSE_ERROR),
    ],
    ("audience", "export"): [
        (("nope", "{out}/x.csv"), "no audience 'nope'"),
        (("nope", "{out}/x.csv", "--format", "pdf"), "Invalid value for '--format': 'pdf' is not one of"),
        (("nope", "{out}/x.csv", "--date", BAD_DATE), DATE_ERROR),
        ((NO_WAREHOUSE, "nope", "{out}/x.csv"), WAREHOUSE_ERROR),
    ],
    ("audience", "sync"): [
        (("nope", "--to", "{out}/drop"), "no audience 'nope'"),
        (("nope", "--to", "{out}/drop", "--format", "xml"), "Invalid value for '--format': 'xml' is not one of"),
        ((NO_WAREHOUSE, "nope", "--to", "{out}/drop"), WAREHOUSE_ERROR),
        (("nope",), "give one of --to PATH or --destination NAME"),
        (("nope", "--destination", "crm"), "no audience 'nope'"),
    ],
    ("audience", "holdout"): [
        (("nope", "--share", "0.1"), "no audience 'nope'"),
        (("nope", "--share", "1.5"), "holdout share: expected a share from 0 up to (not including) 1, got 1.5"),
        ((NO_WAREHOUSE, "x", "--share", "0.1"), WAREHOUSE_ERROR),
    ],
    ("audience", "lift"): [
        (("nope", "--campaign-date", BAD_DATE), "Invalid value for '--campaign-date'"),
        (("nope", "--campaign-date", D), "no audience 'nope'"),
        ((NO_WAREHOUSE, "x", "--campaign-date", D), WAREHOUSE_ERROR),
    ],
    ("audience", "mde"): [
        (("nope", "--date", BAD_DATE), DATE_ERROR),
        (("nope", "--date", D), "no audience 'nope'"),
        ((NO_WAREHOUSE, "x", "--date", D), WAREHOUSE_ERROR),
    ],
    ("audience", "overlap"): [
        (("nope", "other"), "no audience 'nope'"),
        (("--approximate", "a", "b"), "No such option: --approximate"),
        ((NO_WAREHOUSE, "a", "b"), WAREHOUSE_ERROR),
    ],
    ("audience", "history"): [
        (("nope",), "no audience 'nope'"),
        (("nope", "--from", BAD_DATE), "Invalid value for '--from'"),
        ((NO_WAREHOUSE, "x"), WAREHOUSE_ERROR),
    ],
    ("audience", "memberships"): [
        (("p1", "--to", BAD_DATE), "Invalid value for '--to'"),
        ((NO_WAREHOUSE, "p1"), WAREHOUSE_ERROR),
    ],
    ("destination", "create"): [
        (("x", "--kind", "ftp"), "Invalid value for '--kind': 'ftp' is not one of"),
        (("x", "--kind", "webhook", "--set", "url=ftp://host"), "url must start with http:// or https://"),
        (("x", "--kind", "files", "--set", "oops"), "expected KEY=VALUE, got 'oops'"),
        (("x", "--kind", "files", "--set", "path={out}", "--set", "colums=[a]"), "unknown files setting(s) colums"),
        ((NO_WAREHOUSE, "x", "--kind", "delta"), WAREHOUSE_ERROR),
    ],
    ("destination", "list"): [(("--bogus",), "No such option: --bogus"), ((NO_WAREHOUSE,), WAREHOUSE_ERROR)],
    ("destination", "show"): [(("nope",), "no destination 'nope'"), ((NO_WAREHOUSE, "x"), WAREHOUSE_ERROR)],
    ("destination", "delete"): [(("nope",), "no destination 'nope'"), ((NO_WAREHOUSE, "x"), WAREHOUSE_ERROR)],
    ("destination", "sync"): [(("nope",), "no destination 'nope'"), ((NO_WAREHOUSE,), WAREHOUSE_ERROR)],
    ("destination", "dead-letters"): [
        (("--limit", "x"), "'x' is not a valid integer"),
        ((NO_WAREHOUSE,), WAREHOUSE_ERROR),
    ],
    ("audience", "unsync"): [(("nope",), "no audience 'nope'"), ((NO_WAREHOUSE, "x"), WAREHOUSE_ERROR)],
    ("audience", "rename"): [(("nope", "new"), "no audience 'nope'"), ((NO_WAREHOUSE, "x", "y"), WAREHOUSE_ERROR)],
    ("audience", "delete"): [(("nope",), "no audience 'nope'"), ((NO_WAREHOUSE, "x"), WAREHOUSE_ERROR)],
    ("audience", "changes"): [
        (("nope", "--date", BAD_DATE), DATE_ERROR),
        (("nope", "--date", D), "no audience 'nope'"),
        ((NO_WAREHOUSE, "x", "--date", D), WAREHOUSE_ERROR),
    ],
    ("audience", "lookalike"): [
        (("seed", "--size", "5", "--by", "monetary", "--date", BAD_DATE), DATE_ERROR),
        (("seed", "--size", "five", "--by", "monetary", "--date", D), "'five' is not a valid integer"),
        ((NO_WAREHOUSE, "seed", "--size", "5", "--by", "monetary", "--date", D), WAREHOUSE_ERROR),
    ],
    ("generate",): [(("--personas", "many"), "Invalid value for '--personas': 'many' is not a valid integer")],
    ("ingest",): [
        (("--bogus",), "No such option: --bogus"),
        (("--raw-dir", "{out}/raw"), "raw folder {out}/raw does not exist: nothing to ingest"),
        ((NO_WAREHOUSE, "--raw-dir", "{out}/raw"), "raw folder {out}/raw does not exist"),
    ],
    ("features",): [
        (("--date", BAD_DATE), DATE_ERROR),
        ((NO_WAREHOUSE, "--date", D), WAREHOUSE_ERROR),
    ],
    ("identity", "build"): [
        (("--date", BAD_DATE), DATE_ERROR),
        ((NO_WAREHOUSE, "--date", D), WAREHOUSE_ERROR),
    ],
    ("features", "catalog"): [(("--format", "xml"), "Invalid value for '--format': 'xml' is not one of")],
    ("features", "show"): [(("--date", BAD_DATE), DATE_ERROR), ((NO_WAREHOUSE, "--date", D), WAREHOUSE_ERROR)],
    ("insights",): [(("--date", BAD_DATE), DATE_ERROR), ((NO_WAREHOUSE, "--date", D), WAREHOUSE_ERROR)],
    ("report",): [(("--date", BAD_DATE), DATE_ERROR), ((NO_WAREHOUSE, "--date", D), WAREHOUSE_ERROR)],
    ("profile",): [(("p1", "--date", BAD_DATE), DATE_ERROR), ((NO_WAREHOUSE, "p1"), WAREHOUSE_ERROR)],
    ("maintain",): [
        (("--table", "audience_member"), "unknown table 'audience_member' (did you mean audience_members?)"),
        (("--retention-hours", "-1"), "Invalid value for '--retention-hours': -1 is not in the range x>=0"),
        ((NO_WAREHOUSE,), WAREHOUSE_ERROR),
    ],
    ("train", "segments"): [(("--date", BAD_DATE), DATE_ERROR), ((NO_WAREHOUSE, "--date", D), WAREHOUSE_ERROR)],
    ("train", "clv"): [(("--date", BAD_DATE), DATE_ERROR), ((NO_WAREHOUSE, "--date", D), WAREHOUSE_ERROR)],
    ("train", "recommendations"): [
        (("--date", BAD_DATE), DATE_ERROR),
        ((NO_WAREHOUSE, "--date", D), WAREHOUSE_ERROR),
    ],
    ("train", "propensity"): [(("--date", BAD_DATE), DATE_ERROR), ((NO_WAREHOUSE, "--date", D), WAREHOUSE_ERROR)],
    ("score", "segments"): [(("--date", BAD_DATE), DATE_ERROR), ((NO_WAREHOUSE, "--date", D), WAREHOUSE_ERROR)],
    ("score", "propensity"): [(("--date", BAD_DATE), DATE_ERROR), ((NO_WAREHOUSE, "--date", D), WAREHOUSE_ERROR)],
    ("score", "clv"): [(("--date", BAD_DATE), DATE_ERROR), ((NO_WAREHOUSE, "--date", D), WAREHOUSE_ERROR)],
    ("models", "list"): [((NO_WAREHOUSE,), WAREHOUSE_ERROR)],
    ("models", "promote"): [
        (("segengine_clv", "--version", "two"), "'two' is not a valid integer"),
        ((NO_WAREHOUSE, "segengine_clv", "--version", "2"), WAREHOUSE_ERROR),
    ],
    ("pipeline", "daily"): [
        (("--date", BAD_DATE), DATE_ERROR),
        (("--date", D, "--bogus"), "No such option"),
        (("--date", D, "--steps", "ingest,feature"), "unknown step(s) feature (did you mean features?)"),
    ],
    ("pipeline", "train"): [(("--date", BAD_DATE), DATE_ERROR), ((NO_WAREHOUSE, "--date", D), WAREHOUSE_ERROR)],
    ("pipeline", "unlock"): [(("--date", BAD_DATE), DATE_ERROR), ((NO_WAREHOUSE, "--date", D), WAREHOUSE_ERROR)],
    ("pipeline", "steps"): [(("--bogus",), "No such option: --bogus")],
    ("runs",): [(("--date", BAD_DATE), DATE_ERROR), ((NO_WAREHOUSE,), WAREHOUSE_ERROR)],
    ("demo",): [(("--personas", "many"), "Invalid value for '--personas': 'many' is not a valid integer")],
    ("recommend",): [(("--date", BAD_DATE), DATE_ERROR), ((NO_WAREHOUSE, "--date", D), WAREHOUSE_ERROR)],
    ("recommend", "evaluate"): [
        (("--date", BAD_DATE), DATE_ERROR),
        ((NO_WAREHOUSE, "--date", D), WAREHOUSE_ERROR),
    ],
    # Renamed: whatever follows, one line saying where the command went.
    ("train-recommendations",): [(("--date", BAD_DATE), "is now `segengine train recommendations`")],
    ("audience-lookalike",): [(("x", "--date", BAD_DATE), "is now `segengine audience lookalike`")],
    ("segment", "validate"): [
        (("{missing}",), "{missing}: segment file not found"),
        (("{broken}",), "{broken} line 4: not valid YAML/JSON"),
        (("{typo}",), "{typo} line 2: where.attr: unknown attribute 'monetry' (did you mean monetary"),
        (("{ghost}",), "where.in_segment: unknown segment 'loyal_customerz' (did you mean loyal_customers?)"),
    ],
    ("segment", "explain"): [
        (("{ok}", "--date", BAD_DATE), DATE_ERROR),
        (("{missing}",), "{missing}: segment file not found"),
        (("{broken}",), "{broken} line 4: not valid YAML/JSON"),
        (("{ghost}",), "unknown segment 'loyal_customerz' (did you mean loyal_customers?)"),
    ],
    ("segment", "count"): [
        (("{ok}", "--date", BAD_DATE), DATE_ERROR),
        (("{broken}", "--date", D), "{broken} line 4: not valid YAML/JSON"),
        (("{ghost}", "--date", D), "unknown segment 'loyal_customerz' (did you mean loyal_customers?)"),
        ((NO_WAREHOUSE, "{ok}", "--date", D), WAREHOUSE_ERROR),
    ],
    ("studio",): [
        (("--host", "0.0.0.0"), "--host 0.0.0.0: the studio listens on a non-loopback address only with --token"),
        (("--port", "70000"), "Invalid value for '--port': 70000 is not in the range 0<=x<=65535"),
        ((NO_WAREHOUSE,), WAREHOUSE_ERROR),
    ],
}

# Group paths: a group without a subcommand name either runs (features, recommend) and
# has its own row above, or only prints its usage; a typo in a subcommand is the case.
GROUP_CASES: dict[tuple[str, ...], tuple[str, str]] = {
    (): ("audiance", "no such command 'audiance' (did you mean audience?)"),
    ("audience",): ("lst", "no such command 'lst' (did you mean list?)"),
    ("destination",): ("synk", "no such command 'synk' (did you mean sync?)"),
    ("train",): ("segment", "no such command 'segment' (did you mean segments?)"),
    ("score",): ("cvl", "no such command 'cvl' (did you mean clv?)"),
    ("models",): ("promot", "no such command 'promot' (did you mean promote?)"),
    ("pipeline",): ("dayly", "no such command 'dayly' (did you mean daily?)"),
    ("segment",): ("validat", "no such command 'validat' (did you mean validate?)"),
    ("features",): ("catalogue", "no such command 'catalogue' (did you mean catalog?)"),
    ("identity",): ("bild", "no such command 'bild' (did you mean build?)"),
    ("recommend",): ("evalute", "no such command 'evalute' (did you mean evaluate?)"),
}


def _commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, cmd in group.commands.items():
        path = (*prefix, name)
        if isinstance(cmd, click.Group):
            yield path, True
            yield from _commands(cmd, path)
        else:
            yield path, False


def test_every_command_has_a_row():
    paths = dict(_commands(cli))
    runnable = {p for p, is_group in paths.items() if not is_group or cli_group_runs(p)}
    assert runnable - set(CASES) == set(), "commands without a bad-input row"
    assert set(CASES) - set(paths) == set(), "rows for commands that do not exist"
    groups = {(), *(p for p, is_group in paths.items() if is_group)}
    assert groups - set(GROUP_CASES) == set(), "groups without a mistyped-subcommand row"


def cli_group_runs(path: tuple[str, ...]) -> bool:
    cmd: click.Command = cli
    for name in path:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    return bool(getattr(cmd, "invoke_without_command", False))


SEGMENTS = {
    "ok.yaml": "name: spenders\nwhere: {attr: monetary, op: '>', value: 0}\n",
    "broken.yaml": "name: broken\nwhere: {attr: monetary, op: '>', value: 0\n\n",
    "typo.yaml": "name: typo\nwhere: {attr: monetry, op: '>', value: 0}\n",
    "ghost.yaml": "name: ghost\nwhere: {in_segment: loyal_customerz}\n",
    "loyal_customers.yaml": "name: loyal customers\nwhere: {attr: frequency, op: '>=', value: 3}\n",
}


@pytest.fixture
def hostile(spark, config, lake, tmp_path, monkeypatch):
    """``run(path, args)``: invoke on the test session against an empty warehouse folder."""
    import segengine.session

    monkeypatch.setattr(segengine.session, "build_spark", lambda *a, **k: spark)
    warehouse = Path(config.warehouse)
    warehouse.mkdir(parents=True)
    missing_warehouse = tmp_path / "no" / "such" / "warehouse"
    files = tmp_path / "files"
    files.mkdir()
    for name, text in SEGMENTS.items():
        (files / name).write_text(text)
    (files / "ids.csv").write_text("email\na@example.com\n")
    values = {
        "missing": str(files / "missing.yaml"),
        "broken": str(files / "broken.yaml"),
        "typo": str(files / "typo.yaml"),
        "ghost": str(files / "ghost.yaml"),
        "ok": str(files / "ok.yaml"),
        "ids": str(files / "ids.csv"),
        "out": str(tmp_path / "out"),
    }

    def run(path: tuple[str, ...], args: tuple[str, ...]):
        where = warehouse
        if args and args[0] == NO_WAREHOUSE:
            where, args = missing_warehouse, args[1:]
        base = ["--env", "local", "--conf", f"warehouse={where}", "--conf", f"delta.backend={lake.backend.name}"]
        argv = [*base, *path, *(a.format(**values) for a in args)]
        return CliRunner().invoke(cli, argv), where

    run.values = values
    run.warehouse = warehouse
    run.missing_warehouse = missing_warehouse
    return run


def _check_one_line(result, expected: str, label: str) -> None:
    assert "Traceback" not in result.output, f"{label}: {result.output}"
    assert isinstance(result.exception, SystemExit), f"{label}: {result.exception!r} {result.output}"
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"{label}: {result.stderr!r}"
    assert lines[0].startswith("error: ") or "is now `segengine" in lines[0], f"{label}: {lines[0]}"
    assert "unexpected" not in lines[0], f"{label}: {lines[0]}"
    assert expected in lines[0], f"{label}: expected {expected!r} in {lines[0]!r}"
    assert result.exit_code == 2, f"{label}: exit {result.exit_code}: {lines[0]}"


def test_every_command_gives_one_line_and_exit_2_on_hostile_input(hostile):
    failures = []
    for path, cases in CASES.items():
        for args, expected in cases:
            label = f"segengine {' '.join(path)} {' '.join(args)}"
            result, where = hostile(path, args)
            try:
                _check_one_line(result, expected.format(**hostile.values), label)
                if where == hostile.missing_warehouse:
                    assert not where.parent.parent.exists(), f"{label}: created {where}"
                else:
                    created = sorted(str(p.relative_to(where)) for p in where.rglob("*"))
                    assert created == [], f"{label}: wrote {created}"
            except AssertionError as exc:
                failures.append(str(exc).splitlines()[0])
    assert failures == [], "\n".join(failures)


def test_a_mistyped_subcommand_gets_a_did_you_mean():
    runner = CliRunner()
    for path, (typo, expected) in GROUP_CASES.items():
        result = runner.invoke(cli, [*path, typo])
        lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
        assert result.exit_code == 2 and len(lines) == 1, (path, result.output)
        assert expected in lines[0], (path, lines[0])


def test_an_unknown_audience_name_gets_a_did_you_mean(hostile, spark, lake, config):
    from segengine.audiences import create_audience

    members = spark.createDataFrame([("p1",)], "persona_id string")
    create_audience(spark, lake, config, "loyal customers", "ann", "static", "upload", {}, members)

    for path, args in (
        (("audience", "show"), ("loyal customer",)),
        (("audience", "count"), ("Loyal customers",)),
        (("audience", "combine"), ("merge", "loyal customers", "loyl customers", "--name", "x")),
    ):
        result, _ = hostile(path, args)
        _check_one_line(result, "(did you mean loyal customers?)", " ".join(path))


def test_an_upload_where_no_row_matches_is_one_line_and_creates_no_audience(hostile, spark, lake):
    personas = spark.createDataFrame([("p1", "someone@example.com")], "persona_id string, email string")
    lake.write(personas, "personas", mode="overwrite")

    result, _ = hostile(("audience", "upload"), ("{ids}", "--name", "strangers", "--id-type", "email"))

    _check_one_line(result, "{ids}: none of the 1 rows matches a persona by email".format(**hostile.values), "upload")
    assert not lake.exists("audiences") and not lake.exists("audience_members")
