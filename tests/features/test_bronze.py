"""Bronze readers: local dates of order lines (see conftest for the rows)."""

from .conftest import SNAPSHOT, ts


def test_order_timestamps_are_dated_in_the_configured_timezone(spark):
    from segengine.features import bronze

    lines = spark.createDataFrame(
        [
            # 23:30 UTC on the snapshot day is already the next day in Berlin (UTC+2).
            ("A", 1, "p_late", ts("2025-06-30 23:30:00"), "web", "P1", 1, 10.0),
            # 02:30 UTC the day after is still the snapshot day in New York (UTC-4).
            ("B", 1, "p_ny", ts("2025-07-01 02:30:00"), "web", "P1", 1, 10.0),
        ],
        "order_id string, line_no int, persona_id string, order_ts timestamp, channel string, "
        "product_id string, quantity int, unit_price double",
    )

    def purchases(tz):
        kept = bronze.order_lines_until(lines, SNAPSHOT, tz, "UTC")
        return {r["persona_id"]: str(r["order_date"]) for r in kept.collect()}

    assert purchases("UTC") == {"p_late": "2025-06-30"}
    assert purchases("Europe/Berlin") == {}
    assert purchases("America/New_York") == {"p_late": "2025-06-30", "p_ny": "2025-06-30"}
