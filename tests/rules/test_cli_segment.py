"""``segengine segment validate|explain|count``: output and one-line errors with exit code 2."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from segengine.cli import cli

SEGMENTS = Path(__file__).resolve().parents[2] / "conf" / "segments"


def test_validate_reports_each_file_and_the_segments_it_uses():
    result = CliRunner().invoke(
        cli, ["segment", "validate", str(SEGMENTS / "sales_opportunity.yaml"), str(SEGMENTS / "churn_risk.yaml")]
    )
    assert result.exit_code == 0, result.output
    assert "'Sales opportunity' (6 conditions, uses churn_risk)" in result.output
    assert "'Churn risk' (5 conditions)" in result.output


def test_explain_prints_words_and_sql_for_the_date():
    result = CliRunner().invoke(
        cli, ["segment", "explain", str(SEGMENTS / "top_10_paying_customers.yaml"), "--date", "2025-06-30"]
    )
    assert result.exit_code == 0, result.output
    assert "Top: 10 by revenue_lifetime desc" in result.output
    assert "f.`snapshot_date` = DATE'2025-06-30'" in result.output
    assert result.output.rstrip().endswith("LIMIT 10")


def test_invalid_segment_is_one_line_on_stderr_and_exit_code_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nwhere:\n  all:\n    - {attr: fit_scor, op: '>=', value: 1}\n")
    result = CliRunner().invoke(cli, ["segment", "validate", str(bad)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: {bad} line 4: where.all[0].attr: unknown attribute 'fit_scor' (did you mean fit_score?)"
    ]


def test_count_prints_counts_by_persona_type_for_the_date(spark, lake, monkeypatch, tmp_path):
    """``segment count`` over a real customer_features partition (the rules fixture rows)."""
    from segengine.cli import Context

    from .conftest import FEATURES, FEATURES_DDL, SNAP

    rows = spark.createDataFrame(FEATURES, FEATURES_DDL).filter(f"snapshot_date = DATE'{SNAP}'")
    lake.overwrite_partition(rows, "customer_features", snapshot_date=SNAP)
    monkeypatch.setattr(Context, "spark", property(lambda self: spark))
    monkeypatch.setattr(Context, "lake", property(lambda self: lake))
    seg = tmp_path / "plans.yaml"
    seg.write_text("name: paying plans\nwhere:\n  all:\n    - {attr: plan, op: in, value: [pro, enterprise, basic]}\n")
    result = CliRunner().invoke(cli, ["segment", "count", str(seg), "--date", SNAP.isoformat()])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "paying plans on 2025-06-30:",
        f"  {'customer':10s} {2:>10,d}",
        f"  {'prospect':10s} {1:>10,d}",
        f"  {'total':10s} {3:>10,d}",
    ]


def test_count_on_a_date_without_features_is_one_line_naming_the_latest_date(spark, lake, monkeypatch, tmp_path):
    """A missing snapshot is not an empty one: no ``total 0``, exit code 2."""
    from segengine.cli import Context

    from .conftest import FEATURES, FEATURES_DDL, SNAP

    monkeypatch.setattr(Context, "spark", property(lambda self: spark))
    monkeypatch.setattr(Context, "lake", property(lambda self: lake))
    seg = tmp_path / "all.yaml"
    seg.write_text("name: everyone\n")
    args = ["segment", "count", str(seg), "--date", "2025-07-01"]
    no_table = CliRunner().invoke(cli, args)
    assert no_table.exit_code == 2, no_table.output
    assert no_table.output.splitlines() == [
        "error: no customer_features partition for 2025-07-01: there is no feature table yet; "
        "run `segengine features --date 2025-07-01` first"
    ]
    lake.write(spark.createDataFrame(FEATURES, FEATURES_DDL), "customer_features", mode="overwrite")
    missing = CliRunner().invoke(cli, args)
    assert missing.exit_code == 2, missing.output
    assert missing.output.splitlines() == [
        f"error: no customer_features partition for 2025-07-01 (latest is {SNAP}); "
        "run `segengine features --date 2025-07-01` first"
    ]


def _delta_table(path: Path) -> None:
    """A one-row Delta table at ``path``, written with delta-rs (no Spark)."""
    import pyarrow as pa
    from deltalake import write_deltalake

    write_deltalake(str(path), pa.table({"persona_id": ["p1"]}))


EVENT_SEGMENT = """name: browsers
where:
  all:
    - {attr: monetary, op: '>', value: 0}
    - {did: add_to_cart, within_days: 30}
    - {attr: visits_30d, op: '>=', value: 2}
"""


def test_validate_and_explain_warn_when_the_warehouse_has_no_events(tmp_path):
    warehouse = tmp_path / "warehouse"
    _delta_table(warehouse / "bronze" / "personas")
    seg = tmp_path / "browsers.yaml"
    seg.write_text(EVENT_SEGMENT)
    plain = tmp_path / "spenders.yaml"
    plain.write_text("name: spenders\nwhere: {attr: monetary, op: '>', value: 0}\n")
    conf = ["--conf", f"warehouse={warehouse}"]
    warning = (
        f"warning: {seg}: needs events, which this warehouse lacks (no events table): "
        "where.all[1]: did add_to_cart at least 1 time(s) within the last 30 days; "
        "where.all[2]: visits_30d >= 2 (event attributes are null, did/did_not see no events)"
    )

    result = CliRunner().invoke(cli, [*conf, "segment", "validate", str(seg), str(plain)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"ok: {seg}: 'browsers' (3 conditions)",
        warning,
        f"ok: {plain}: 'spenders' (1 conditions)",
    ]
    explained = CliRunner().invoke(cli, [*conf, "segment", "explain", str(seg), "--date", "2025-06-30"])
    assert explained.exit_code == 0, explained.output
    assert explained.output.splitlines()[-1] == warning

    # With an events table (or before anything is ingested) there is nothing to warn about.
    _delta_table(warehouse / "bronze" / "events")
    assert "warning" not in CliRunner().invoke(cli, [*conf, "segment", "validate", str(seg)]).output
    empty = ["--conf", f"warehouse={tmp_path / 'empty'}"]
    assert "warning" not in CliRunner().invoke(cli, [*empty, "segment", "validate", str(seg)]).output


def test_an_event_condition_inside_a_used_segment_is_named_with_that_segment(tmp_path):
    from segengine.rules import compile_segment, directory_resolver

    (tmp_path / "browsers.yaml").write_text(EVENT_SEGMENT)
    outer = {
        "name": "vip browsers",
        "where": {"all": [{"in_segment": "browsers"}, {"attr": "frequency", "op": ">", "value": 2}]},
    }
    compiled = compile_segment(outer, "2025-06-30", resolver=directory_resolver(tmp_path))
    assert compiled.needs_events == (
        "segment 'browsers' where.all[1]: did add_to_cart at least 1 time(s) within the last 30 days",
        "segment 'browsers' where.all[2]: visits_30d >= 2",
    )


def test_count_warns_when_the_rule_reads_events_and_the_warehouse_has_none(spark, lake, config, monkeypatch, tmp_path):
    """Like validate and explain: the count of an event rule on an orders-only warehouse says why it is low."""
    from segengine.cli import Context

    from .conftest import FEATURES, FEATURES_DDL, SNAP

    rows = spark.createDataFrame(FEATURES, FEATURES_DDL).filter(f"snapshot_date = DATE'{SNAP}'")
    lake.overwrite_partition(rows, "customer_features", snapshot_date=SNAP)
    _delta_table(Path(config.warehouse) / "bronze" / "personas")
    monkeypatch.setattr(Context, "spark", property(lambda self: spark))
    monkeypatch.setattr(Context, "lake", property(lambda self: lake))
    seg = tmp_path / "carts.yaml"
    seg.write_text("name: carts\nwhere: {did: add_to_cart, within_days: 30}\n")

    result = CliRunner().invoke(
        cli, ["--conf", f"warehouse={config.warehouse}", "segment", "count", str(seg), "--date", SNAP.isoformat()]
    )

    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"warning: {seg}: needs events, which this warehouse lacks (no events table): "
        "where: did add_to_cart at least 1 time(s) within the last 30 days "
        "(event attributes are null, did/did_not see no events)"
    ]
    assert result.stdout.splitlines() == ["carts on 2025-06-30:", f"  {'total':10s} {0:>10,d}"]


def test_explain_counts_the_personas_the_null_rule_leaves_out(spark, lake, config, monkeypatch, tmp_path):
    from segengine.cli import Context

    from .conftest import FEATURES, FEATURES_DDL, SNAP

    rows = spark.createDataFrame(FEATURES, FEATURES_DDL).filter(f"snapshot_date = DATE'{SNAP}'")
    lake.overwrite_partition(rows, "customer_features", snapshot_date=SNAP)
    monkeypatch.setattr(Context, "spark", property(lambda self: spark))
    monkeypatch.setattr(Context, "lake", property(lambda self: lake))
    seg = tmp_path / "not_free.yaml"
    seg.write_text("name: not free\nwhere: {attr: plan, op: '!=', value: free}\n")
    conf = ["--conf", f"warehouse={config.warehouse}"]

    result = CliRunner().invoke(cli, [*conf, "segment", "explain", str(seg), "--date", SNAP.isoformat()])

    assert result.exit_code == 0, result.output
    assert (
        "  - where (plan != 'free'): personas with no plan are not included (1 persona on 2025-06-30); "
        "add `or_empty: true` to the condition to include them"
    ) in result.output.splitlines()
    # A date without a snapshot: the rule is stated, the count is not.
    other = CliRunner().invoke(cli, [*conf, "segment", "explain", str(seg), "--date", "2025-07-01"])
    assert other.exit_code == 0, other.output
    assert "  (not counted: counts need the customer_features snapshot of 2025-07-01)" in other.output.splitlines()


def test_count_of_a_rule_using_a_saved_audience(spark, lake, config, monkeypatch, tmp_path):
    """in_segment names a saved audience, not a file: resolved from the registry (was 'unknown segment')."""
    from segengine.audiences import create_audience
    from segengine.cli import Context

    from .conftest import FEATURES, FEATURES_DDL, SNAP

    rows = spark.createDataFrame(FEATURES, FEATURES_DDL).filter(f"snapshot_date = DATE'{SNAP}'")
    lake.overwrite_partition(rows, "customer_features", snapshot_date=SNAP)
    doc = {"name": "big spenders", "where": {"attr": "monetary", "op": ">", "value": 100}}
    create_audience(spark, lake, config, "big spenders", "ann", "dynamic", "rules", doc)
    monkeypatch.setattr(Context, "spark", property(lambda self: spark))
    monkeypatch.setattr(Context, "lake", property(lambda self: lake))
    seg = tmp_path / "pro_spenders.yaml"
    seg.write_text(
        "name: fit spenders\nwhere:\n  all:\n    - {in_segment: big spenders}\n    - {attr: fit_score, op: '>', value: 85}\n"
    )

    result = CliRunner().invoke(cli, ["segment", "count", str(seg), "--date", SNAP.isoformat()])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "fit spenders on 2025-06-30:",
        f"  {'customer':10s} {1:>10,d}",
        f"  {'total':10s} {1:>10,d}",
    ]


def test_count_on_a_date_before_the_first_data_warns_naming_the_first_date(spark, lake, monkeypatch, tmp_path):
    import datetime as dt

    from segengine.cli import Context

    from .conftest import FEATURES, FEATURES_DDL, ORDER_LINES, ORDERS_DDL, SNAP

    early = dt.date(2024, 1, 1)
    rows = [(r[0], early, *r[2:]) for r in FEATURES if r[1] == SNAP]
    lake.overwrite_partition(spark.createDataFrame(rows, FEATURES_DDL), "customer_features", snapshot_date=early)
    lake.write(spark.createDataFrame(ORDER_LINES, ORDERS_DDL), "order_lines", mode="overwrite")
    monkeypatch.setattr(Context, "spark", property(lambda self: spark))
    monkeypatch.setattr(Context, "lake", property(lambda self: lake))
    seg = tmp_path / "all.yaml"
    seg.write_text("name: everyone\n")

    result = CliRunner().invoke(cli, ["segment", "count", str(seg), "--date", "2024-01-01"])

    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "warning: 2024-01-01 is before the first order line or event (2024-12-01): "
        "the features of that date describe no activity"
    ]
