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
