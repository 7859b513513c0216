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
