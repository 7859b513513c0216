"""The generator through Spark: file formats, reproducibility, end to end into bronze."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from segengine.generate import generate_raw


@pytest.fixture(scope="module")
def bronze(generated_bronze):
    """The session's generated bronze: 1,500 personas with 2% damaged rows (see conftest)."""
    _, lake, result = generated_bronze
    return lake, result


def test_raw_files_come_in_every_reader_format(bronze):
    from pathlib import Path

    out = Path(bronze[1]["generate"]["out_dir"])
    suffixes = {
        t: {p.suffix for p in (out / t).iterdir() if not p.name.startswith((".", "_"))}
        for t in ("personas", "products", "order_lines", "events")
    }
    assert suffixes == {"personas": {".csv"}, "products": {".csv"}, "order_lines": {".parquet"}, "events": {".jsonl"}}
    header = next(p for p in (out / "personas").iterdir() if p.suffix == ".csv").read_text().splitlines()[0]
    assert header.startswith("persona_id,email,phone,cookie_id,created_at")


def test_ingest_quarantines_exactly_the_damaged_rows(bronze):
    lake, result = bronze
    malformed = result["generate"]["malformed"]
    assert all(n > 0 for n in malformed.values())
    quarantined = {t: r["quarantined"] for t, r in result["ingest"]["tables"].items()}
    assert quarantined == malformed
    per_table = {r["table_name"]: r["count"] for r in lake.read("quarantine").groupBy("table_name").count().collect()}
    assert per_table == malformed


def test_bronze_holds_every_clean_row_and_deltalake_reads_it(bronze):
    from deltalake import DeltaTable

    lake, result = bronze
    rows = result["generate"]["rows"]
    for table in ("personas", "products", "order_lines", "events"):
        expected = rows[table] - result["generate"]["malformed"][table]
        assert DeltaTable(lake.uri(table)).to_pyarrow_table().num_rows == expected, table


def test_persona_types_derived_from_bronze_match_the_configured_shares(bronze):
    lake, _ = bronze
    personas = lake.read("personas")
    buyers = (
        lake.read("order_lines").filter("quantity > 0").select("persona_id").distinct().withColumn("buys", F.lit(True))
    )
    typed = personas.join(buyers, "persona_id", "left").select(
        F.when(F.col("buys"), "customer")
        .when(F.col("email").isNotNull() | F.col("phone").isNotNull(), "prospect")
        .otherwise("visitor")
        .alias("persona_type")
    )
    total = typed.count()
    shares = {r["persona_type"]: r["count"] / total for r in typed.groupBy("persona_type").count().collect()}
    assert shares == pytest.approx({"customer": 0.55, "prospect": 0.25, "visitor": 0.20}, abs=0.04)


def test_same_seed_and_count_write_identical_files(spark, config, tmp_path):
    small = config.replace(generator=config.generator.replace(chunk_personas=120))
    first = generate_raw(spark, small, str(tmp_path / "a"), personas=300, seed=9)
    second = generate_raw(spark, small, str(tmp_path / "b"), personas=300, seed=9)
    assert first["rows"] == second["rows"]
    for reader in (
        lambda d: spark.read.option("header", True).csv(f"{d}/personas"),
        lambda d: spark.read.parquet(f"{d}/order_lines"),
        lambda d: spark.read.text(f"{d}/events"),
    ):
        a, b = reader(tmp_path / "a"), reader(tmp_path / "b")
        assert a.count() > 0
        assert a.exceptAll(b).count() == 0 and b.exceptAll(a).count() == 0
