"""Raw file readers: Parquet files whose column types differ are read, not refused with a Java error."""

from __future__ import annotations

import datetime as dt


def test_parquet_files_with_conflicting_column_types_are_read_as_text(spark, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from segengine.contract import contract
    from segengine.ingest.sources import list_files, read_raw

    base = {
        "order_id": ["o1"],
        "line_no": pa.array([1], pa.int32()),
        "persona_id": ["p1"],
        "order_ts": pa.array([dt.datetime(2025, 6, 1, 10)], pa.timestamp("us")),
        "channel": ["web"],
        "product_id": ["P1"],
        "unit_price": [10.0],
    }
    folder = tmp_path / "order_lines"
    folder.mkdir()
    pq.write_table(pa.table({**base, "quantity": pa.array([2], pa.int32())}), folder / "a.parquet")
    pq.write_table(
        pa.table({**base, "order_id": ["o2"], "quantity": pa.array([1.5], pa.float64())}), folder / "b.parquet"
    )
    files = list_files(spark, str(folder), ["parquet"])

    rows = read_raw(spark, files, contract("order_lines")).select("order_id", "quantity").collect()

    assert sorted((r["order_id"], r["quantity"]) for r in rows) == [("o1", "2"), ("o2", "1.5")]
