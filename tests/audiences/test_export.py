"""Export to CSV and Excel with recommended products."""

from __future__ import annotations

import csv
import os

import pytest

from segengine.audiences import create_audience, export_audience
from segengine.errors import AudienceError

from .conftest import D1


@pytest.fixture
def vip(spark, features, config):
    df = spark.createDataFrame([("p2",), ("p1",)], "persona_id string")
    create_audience(spark, features, config, "vip", "ann", "static", "upload", {}, df, snapshot_date=D1)
    recs = [("p1", f"P{i:02d}", i, 100 - i, "als", D1) for i in range(1, 12)]
    schema = "persona_id string, product_id string, rank int, score int, recommender string, snapshot_date date"
    features.overwrite_partition(spark.createDataFrame(recs, schema), "recommendations", snapshot_date=D1)
    return features


def test_single_file_csv_has_columns_then_ten_products(spark, vip, config, tmp_path):
    out = export_audience(
        spark, vip, config, "vip", str(tmp_path / "vip.csv"), "csv", ["email", "country"], single_file=True
    )
    with open(tmp_path / "vip.csv") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["persona_id", "email", "country"] + [f"product_{i}" for i in range(1, 11)]
    assert rows[1] == ["p1", "ann@example.com", "FR"] + [f"P{i:02d}" for i in range(1, 11)]
    assert rows[2] == ["p2", "bob@example.com", "DE"] + [""] * 10
    assert out["rows"] == 2


def test_xlsx_export_streams_rows_into_a_workbook(spark, vip, config, tmp_path):
    from openpyxl import load_workbook

    path = str(tmp_path / "vip.xlsx")
    export_audience(spark, vip, config, "vip", path, "xlsx", ["monetary"], with_recommendations=False)
    rows = list(load_workbook(path).active.iter_rows(values_only=True))
    assert rows == [("persona_id", "monetary"), ("p1", 500.0), ("p2", 300.0)]


def test_xlsx_export_past_the_row_limit_suggests_csv(spark, vip, config, tmp_path):
    small = config.replace(audiences=config.audiences.replace(excel_max_rows=1))
    with pytest.raises(AudienceError, match="export it to CSV"):
        export_audience(spark, vip, small, "vip", str(tmp_path / "x.xlsx"), "xlsx")


def test_export_to_a_missing_folder_is_refused_unless_mkdir(spark, vip, config, tmp_path):
    target = tmp_path / "no" / "such" / "vip.csv"
    with pytest.raises(AudienceError, match=r"export: folder .*/no/such does not exist; create it or add --mkdir"):
        export_audience(spark, vip, config, "vip", str(target), "csv", ["email"], single_file=True)
    assert not (tmp_path / "no").exists()
    out = export_audience(spark, vip, config, "vip", str(target), "csv", ["email"], single_file=True, mkdir=True)
    assert out["rows"] == 2 and target.exists()


def test_consent_keeps_only_the_members_who_opted_in(spark, lake, config, tmp_path):
    rows = [("p1", D1, "customer", True), ("p2", D1, "customer", False), ("p3", D1, "customer", None)]
    schema = "persona_id string, snapshot_date date, persona_type string, consent_email boolean"
    lake.overwrite_partition(spark.createDataFrame(rows, schema), "customer_features", snapshot_date=D1)
    members = spark.createDataFrame([("p1",), ("p2",), ("p3",)], "persona_id string")
    create_audience(spark, lake, config, "all", "ann", "static", "upload", {}, members, snapshot_date=D1)
    path = tmp_path / "all.csv"

    out = export_audience(
        spark,
        lake,
        config,
        "all",
        str(path),
        "csv",
        ["persona_id"],
        snapshot_date=D1,
        single_file=True,
        consent="email",
    )

    assert (out["rows"], out["members"], out["without_consent"]) == (1, 3, 2)
    assert path.read_text().splitlines() == ["persona_id", "p1"]
    with pytest.raises(AudienceError, match="customer_features has no consent_sms column; cannot check sms consent"):
        export_audience(spark, lake, config, "all", str(path), "csv", snapshot_date=D1, consent="sms")


def test_xlsx_has_a_styled_header_a_filter_frozen_panes_widths_and_number_formats(tmp_path):
    import datetime as dt

    from openpyxl import load_workbook

    from segengine.audiences.export import column_kind, write_xlsx

    kinds = [column_kind(t) for t in ("string", "double", "long", "date", "string")]
    assert kinds == ["text", "decimal", "integer", "date", "text"]
    rows = [["p1", 1234567.891, 12345, dt.date(2025, 6, 1), "a-rather-long-address@example.com"], ["p2"] + [None] * 4]
    path = tmp_path / "a.xlsx"

    assert write_xlsx(str(path), "VIP: [best]", ["persona_id", "monetary", "orders", "last", "email"], kinds, rows) == 2

    ws = load_workbook(path).active
    assert ws.title == "VIP best"
    assert ws.freeze_panes == "B2" and ws.auto_filter.ref == "A1:E3"
    assert all(c.font.b for c in ws[1]) and ws["A1"].fill.fgColor.rgb.endswith("305496")
    assert [c.number_format for c in ws[2]][1:4] == ["#,##0.00", "#,##0", "yyyy-mm-dd"]
    widths = {c: ws.column_dimensions[c].width for c in "ABCDE"}
    assert widths["B"] == len("1,234,567.89") + 1 and widths["E"] == len("a-rather-long-address@example.com") + 1
    assert widths["C"] == 8  # the minimum
    assert list(ws.iter_rows(min_row=3, values_only=True)) == [("p2", None, None, None, None)]


def test_the_demo_exports_into_its_own_folder_creating_it(spark, vip, config):
    """`make demo` stopped at its last step when the export folder check came in: the
    demo's exports folder under a new warehouse did not exist."""
    from segengine.pipeline.demo_audiences import export_demo_files

    out = export_demo_files(spark, vip, config, "vip", D1, columns=["persona_id", "email"], user="ann")
    assert (out["csv"]["rows"], out["xlsx"]["rows"]) == (2, 2)
    assert out["csv"]["path"].endswith("exports/churn_risk.csv")
    assert os.path.isfile(out["csv"]["path"].removeprefix("file:")) and os.path.isfile(
        out["xlsx"]["path"].removeprefix("file:")
    )
