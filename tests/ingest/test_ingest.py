"""Ingest on small hand-written raw files: exact loads, exact rejections, idempotence."""

from __future__ import annotations

import json
import os
import shutil
import time

import pandas as pd
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from segengine.contract import EVENT_TYPES
from segengine.errors import DataContractError
from segengine.ingest import ingest, ingest_table
from segengine.lake import Lake

PERSONAS_CSV = """persona_id,email,phone,cookie_id,created_at,country,city,birth_date,gender,consent_email,consent_sms,industry,company_size,account_owner,plan
P1, Anna.Smith@Example.COM ,+4911,ck1,2024-01-02 10:00:00,DE,Berlin,1990-05-01,female,true,false,,,,
P2,bob.example.com,,,2024-01-03 11:00:00,US,Austin,,male,false,false,,,,
P3,carla@example.com,,,03/01/2024 11:00,FR,Paris,,female,true,true,,,,
,dan@example.com,,,2024-01-04 12:00:00,GB,Leeds,,male,true,false,,,,
P5,eve@example.com,,,2024-01-05 12:00:00,NL,Utrecht,,robot,true,false,Retail,1-10,alice,pro
P1,anna2@example.com,,,2024-02-01 09:00:00,DE,Munich,,female,true,false,,,,
P7,,,ck7,2024-03-01 08:00:00,SE,Stockholm,,unknown,,,,,,
"""

PRODUCTS_CSV = """product_id,name,category,brand,price
SKU1,Runner,Shoes,Stridewell,79.90
SKU2,Tee,Apparel,Basix,-5
SKU3,Lamp,Home,Nook,abc
SKU4,Book,,Inkwell Press,12.00
"""

EVENTS_JSONL = "\n".join(
    [
        '{"event_id":"E1","persona_id":"P1","event_ts":"2024-05-01T10:00:00Z","event_type":"page_view","session_id":"S1","duration_s":12.5}',
        '{"event_id":"E2","cookie_id":"ck7","event_ts":"2024-05-02T10:00:00Z","event_type":"product_view","product_id":"SKU1"}',
        '{"event_id":"E3","persona_id":"P1","event_ts":"2024-05-03T10:00:00Z","event_type":"page_visit"}',
        '{"event_id":"E4","event_ts":"2024-05-04T10:00:00Z","event_type":"login"}',
        '{"event_id":"E5","persona_id":"P1","event_ts":"2024-05-0',
        '{"event_id":"E6","persona_id":"P1","event_ts":"yesterday","event_type":"login","duration_s":-3}',
    ]
)


def _order_lines() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order_id": ["O1", "O1", "O2", "O3", "O4", "O5", "O1"],
            "line_no": [1, 2, 1, 1, 1, 1, 1],
            "persona_id": ["P1", "P1", "P2", None, "P1", "P1", "P1"],
            "order_ts": ["2024-05-01 10:00:00"] * 5 + ["2024-13-01 10:00:00", "2024-05-09 10:00:00"],
            "channel": ["web", "web", "app", "web", "fax", "web", "web"],
            "product_id": ["SKU1", "SKU2", "SKU1", "SKU1", "SKU1", "SKU1", "SKU1"],
            "quantity": [1, -1, 0, 1, 1, 1, 2],
            "unit_price": [79.9, 19.0, 79.9, 79.9, 79.9, 79.9, 70.0],
        }
    ).astype({"line_no": "int32", "quantity": "int32"})


def _write_raw(raw) -> None:
    for table in ("personas", "products", "order_lines", "events"):
        (raw / table).mkdir(parents=True, exist_ok=True)
    (raw / "personas" / "personas_2024.csv").write_text(PERSONAS_CSV)
    (raw / "products" / "products.csv").write_text(PRODUCTS_CSV)
    (raw / "events" / "events.jsonl").write_text(EVENTS_JSONL + "\n")
    _order_lines().to_parquet(raw / "order_lines" / "lines.parquet", index=False)


@pytest.fixture(scope="module")
def loaded(spark, base_config, tmp_path_factory):
    """One ingest of the hand-written files into a fresh warehouse."""
    root = tmp_path_factory.mktemp("ingest")
    raw = root / "raw"
    _write_raw(raw)
    config = base_config.replace(warehouse=str(root / "warehouse"))
    lake = Lake.open(spark, config)
    result = ingest(spark, lake, config, str(raw))
    return lake, config, raw, result


def _quarantine(lake: Lake, table: str):
    return (
        lake.read("quarantine")
        .filter(F.col("table_name") == table)
        .select(F.element_at(F.split("source_file", "/"), -1).alias("file"), "row_number", "reason")
    )


def test_counts_in_loaded_quarantined_per_table(loaded):
    _, _, _, result = loaded
    counts = {t: (r["rows_in"], r["loaded"], r["quarantined"]) for t, r in result["tables"].items()}
    assert counts == {
        "products": (4, 1, 3),
        "personas": (7, 2, 5),
        "order_lines": (7, 2, 5),
        "events": (6, 2, 4),
        # Optional tables without a raw folder: nothing to load.
        "support_tickets": (0, 0, 0),
        "survey_responses": (0, 0, 0),
    }
    assert (result["rows_in"], result["loaded"], result["quarantined"]) == (24, 7, 17)


def test_persona_rejections_name_file_row_and_reason(spark, loaded):
    lake = loaded[0]
    expected = spark.createDataFrame(
        [
            ("personas_2024.csv", 2, "email is not a valid email"),
            ("personas_2024.csv", 3, "invalid timestamp in created_at"),
            ("personas_2024.csv", 4, "missing required field persona_id"),
            ("personas_2024.csv", 5, "gender is not one of female, male, other, unknown"),
            ("personas_2024.csv", 6, "duplicate key (persona_id) within this load; the first occurrence was kept"),
        ],
        "file string, row_number bigint, reason string",
    )
    assert_df_equality(_quarantine(lake, "personas"), expected, ignore_row_order=True, ignore_nullable=True)


def test_order_line_rejections_cover_zero_quantity_missing_key_bad_channel_and_date(spark, loaded):
    lake = loaded[0]
    expected = spark.createDataFrame(
        [
            ("lines.parquet", 3, "quantity must not be zero"),
            ("lines.parquet", 4, "missing required field persona_id"),
            ("lines.parquet", 5, "channel is not one of web, app, store, phone"),
            ("lines.parquet", 6, "invalid timestamp in order_ts"),
            ("lines.parquet", 7, "duplicate key (order_id, line_no) within this load; the first occurrence was kept"),
        ],
        "file string, row_number bigint, reason string",
    )
    assert_df_equality(_quarantine(lake, "order_lines"), expected, ignore_row_order=True, ignore_nullable=True)


def test_event_rejections_include_unparseable_line_and_every_problem_of_a_row(spark, loaded):
    lake = loaded[0]
    expected = spark.createDataFrame(
        [
            (
                "events.jsonl",
                3,
                "event_type is not one of " + ", ".join(EVENT_TYPES),
            ),
            ("events.jsonl", 4, "needs at least one of persona_id, cookie_id"),
            ("events.jsonl", 5, "unparseable record"),
            ("events.jsonl", 6, "invalid timestamp in event_ts; duration_s is below the minimum 0"),
        ],
        "file string, row_number bigint, reason string",
    )
    assert_df_equality(_quarantine(lake, "events"), expected, ignore_row_order=True, ignore_nullable=True)


def test_product_rejections_negative_price_bad_number_missing_category(spark, loaded):
    lake = loaded[0]
    expected = spark.createDataFrame(
        [
            ("products.csv", 2, "price is below the minimum 0"),
            ("products.csv", 3, "invalid double in price"),
            ("products.csv", 4, "missing required field category"),
        ],
        "file string, row_number bigint, reason string",
    )
    assert_df_equality(_quarantine(lake, "products"), expected, ignore_row_order=True, ignore_nullable=True)


def test_quarantine_keeps_the_raw_record(loaded):
    lake = loaded[0]
    raws = {
        r["row_number"]: r["raw_record"]
        for r in lake.read("quarantine")
        .filter(F.col("table_name") == "events")
        .select("row_number", "raw_record")
        .collect()
    }
    assert raws[5] == '{"event_id":"E5","persona_id":"P1","event_ts":"2024-05-0'
    assert json.loads(raws[3])["event_type"] == "page_visit"


def test_good_rows_are_typed_and_emails_normalised(spark, loaded):
    lake = loaded[0]
    personas = lake.read("personas").select("persona_id", "email", "created_at", "consent_email").orderBy("persona_id")
    rows = [tuple(r) for r in personas.collect()]
    assert [r[:2] for r in rows] == [("P1", "anna.smith@example.com"), ("P7", None)]
    assert str(rows[0][2]) == "2024-01-02 10:00:00" and rows[0][3] is True
    lines = (
        lake.read("order_lines").orderBy("line_no").select("order_id", "line_no", "quantity", "unit_price").collect()
    )
    assert [tuple(r) for r in lines] == [("O1", 1, 1, 79.9), ("O1", 2, -1, 19.0)]
    events = lake.read("events").orderBy("event_id").select("event_id", "event_date", "duration_s").collect()
    assert [(r[0], str(r[1]), r[2]) for r in events] == [("E1", "2024-05-01", 12.5), ("E2", "2024-05-02", None)]


def test_bronze_tables_are_readable_by_deltalake(loaded):
    from deltalake import DeltaTable

    lake = loaded[0]
    assert DeltaTable(lake.uri("personas")).to_pyarrow_table().num_rows == 2
    assert sorted(DeltaTable(lake.uri("events")).metadata().partition_columns) == ["event_date"]


def test_rerun_of_the_same_files_skips_them_and_duplicates_nothing(spark, loaded):
    lake, config, raw, _ = loaded
    before = {t: lake.version(t) for t in ("personas", "order_lines", "events", "quarantine")}
    again = ingest(spark, lake, config, str(raw))
    assert again["rows_in"] == 0 and {t: r["skipped_files"] for t, r in again["tables"].items()} == {
        "products": 1,
        "personas": 1,
        "order_lines": 1,
        "events": 1,
        "support_tickets": 0,  # no raw files of the optional tables
        "survey_responses": 0,
    }
    assert {t: lake.version(t) for t in before} == before
    assert lake.read("quarantine").count() == 17


def test_a_warehouse_and_raw_folder_moved_elsewhere_are_not_ingested_again(spark, base_config, tmp_path):
    """``ingest_log`` recognises a file by its place in its table's folder, size and time:
    the same files under another root (a copied or remounted warehouse) are skipped."""
    first = tmp_path / "first"
    _write_raw(first / "raw")
    config = base_config.replace(warehouse=str(first / "warehouse"))
    lake = Lake.open(spark, config)
    assert ingest(spark, lake, config, str(first / "raw"))["rows_in"] > 0

    moved = tmp_path / "moved"
    shutil.copytree(first, moved)  # copies modification times too
    config = base_config.replace(warehouse=str(moved / "warehouse"))
    lake = Lake.open(spark, config)
    before = {t: lake.version(t) for t in ("personas", "order_lines", "events", "products")}
    again = ingest(spark, lake, config, str(moved / "raw"))
    assert again["rows_in"] == 0
    skipped = {t: r["skipped_files"] for t, r in again["tables"].items()}
    assert skipped == {**dict.fromkeys(before, 1), "support_tickets": 0, "survey_responses": 0}
    assert {t: lake.version(t) for t in before} == before


def test_redelivered_file_updates_rows_instead_of_duplicating(spark, loaded):
    lake, config, raw, _ = loaded
    path = raw / "personas" / "personas_2024.csv"
    path.write_text(PERSONAS_CSV.replace("DE,Berlin", "DE,Hamburg"))
    os.utime(path, (time.time() + 5, time.time() + 5))  # a new delivery of the same file
    result = ingest_table(spark, lake, config, "personas", str(raw))
    assert (result["files"], result["loaded"], result["quarantined"]) == (1, 2, 5)
    rows = lake.read("personas").select("persona_id", "city").orderBy("persona_id").collect()
    assert [tuple(r) for r in rows] == [("P1", "Hamburg"), ("P7", "Stockholm")]
    assert lake.read("quarantine").filter(F.col("table_name") == "personas").count() == 5


def test_csv_header_without_a_required_column_is_an_error_naming_file_and_column(spark, lake, config, tmp_path):
    raw = tmp_path / "raw"
    (raw / "products").mkdir(parents=True)
    (raw / "products" / "catalogue.csv").write_text("product_id,name,brand,price\nSKU1,Runner,Stridewell,79.9\n")
    with pytest.raises(DataContractError, match=r"catalogue\.csv.*category"):
        ingest_table(spark, lake, config, "products", str(raw))
    assert not lake.exists("products")
