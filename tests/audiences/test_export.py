"""Export to CSV and Excel with recommended products."""

from __future__ import annotations

import csv
import dataclasses

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
    small = dataclasses.replace(config, audiences=dataclasses.replace(config.audiences, excel_max_rows=1))
    with pytest.raises(AudienceError, match="export it to CSV"):
        export_audience(spark, vip, small, "vip", str(tmp_path / "x.xlsx"), "xlsx")
