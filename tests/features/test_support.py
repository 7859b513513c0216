"""Expansion, support, satisfaction and campaign attributes on the hand-written world.

Support tickets and survey answers of ``conftest``: c1 opened T1 on 06-01 (closed 30 h
later) and T2 on 06-29 (still open); c1 answered CSAT 4 and NPS 9. c1's email click E7
has no campaign. The incremental refresh gives the same values (``test_incremental``).
"""

from __future__ import annotations

COLUMNS = (
    "tickets_90d",
    "open_tickets",
    "median_hours_to_close_90d",
    "last_csat",
    "last_nps",
    "nps_category",
    "campaign_clicks_30d",
    "campaign_conversions_30d",
    "revenue_prev_cycle",
    "expansion_revenue",
)


def test_support_survey_campaign_and_expansion_attributes(rows):
    got = {p: tuple(rows[p][c] for c in COLUMNS) for p in ("c1", "c2", "r1")}
    assert got == {
        # Cycle 2024-12-30 .. 06-30: 100 net; the previous cycle (2024-06-30 .. 12-29) had
        # nothing (O3 is 2024-06-01), and c1 bought before the cycle: +100.
        "c1": (2, 1, 30.0, 4, 9, "promoter", 0, 0, 0.0, 100.0),
        # O5 (12-29, previous cycle) 20 -> O4 (12-30, this cycle) 20: no expansion. No tickets: 0, no answers: null.
        "c2": (0, 0, None, None, None, None, 0, 0, 20.0, 0.0),
        # A refund is no purchase: never a customer, no expansion.
        "r1": (0, 0, None, None, None, None, 0, 0, 0.0, None),
    }


def test_extra_attributes_are_null_for_an_absent_source_and_zero_counts_for_a_present_one(spark):
    from segengine.features.support import (
        CAMPAIGN_ATTRIBUTES,
        SURVEY_ATTRIBUTES,
        TICKET_ATTRIBUTES,
        Extras,
        with_extras,
    )

    base = spark.createDataFrame([("a",), ("b",)], "persona_id string")
    tickets = spark.createDataFrame(
        [("a", 3, 1, 5.0)], "persona_id string, tickets_90d long, open_tickets long, median_hours_to_close_90d double"
    )
    out = {
        r["persona_id"]: r.asDict() for r in with_extras(base, Extras(tickets, frozenset(TICKET_ATTRIBUTES))).collect()
    }
    assert [out["b"][c] for c in TICKET_ATTRIBUTES] == [0, 0, None]
    assert [out["a"][c] for c in TICKET_ATTRIBUTES] == [3, 1, 5.0]
    for name in SURVEY_ATTRIBUTES + CAMPAIGN_ATTRIBUTES:
        assert out["a"][name] is None and out["b"][name] is None, name


def test_a_features_table_written_before_the_new_attributes_takes_them_as_columns(lake, feats):
    """An upgraded warehouse: the partition write adds the new columns; older rows read null."""
    import datetime as dt

    from pyspark.sql import functions as F

    from segengine.features.output import write_features

    from .conftest import SNAPSHOT

    new = ("revenue_prev_cycle", "expansion_revenue", "tickets_90d", "last_csat", "nps_category")
    earlier = dt.date(2025, 6, 1)
    old = feats.drop(*new).withColumn("snapshot_date", F.lit(earlier))
    lake.write(old, "customer_features", mode="overwrite", partition_by=["snapshot_date"])
    write_features(lake, feats, SNAPSHOT)
    table = lake.read("customer_features")
    assert set(new) <= set(table.columns)
    got = {
        (r["snapshot_date"], r["tickets_90d"])
        for r in table.where("persona_id = 'c1'").select("snapshot_date", "tickets_90d").collect()
    }
    assert got == {(earlier, None), (SNAPSHOT, 2)}
