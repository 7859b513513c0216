"""Incremental refresh: D+1 from the state of D equals the full recompute of D+1.

Hand-written data: the history up to 2025-06-30 is loaded and refreshed in full, then
the rows of 2025-07-01 arrive in their own commits (a refund, two first purchases, a
login) and 2025-07-01 is refreshed incrementally. Each refresh costs a few seconds;
they run once for the module.
"""

from __future__ import annotations

import datetime as dt

import pytest

from .conftest import EVENTS, ORDER_LINES, PERSONAS, PRODUCTS, SNAPSHOT, pad_rows, ts

NEXT = SNAPSHOT + dt.timedelta(days=1)
STATE_TABLES = ("customer_features", "customer_daily", "feature_state", "feature_state_items", "feature_state_log")

# c1 visits on 2025-06-01: inside the 30 days of 06-30, outside those of 07-01.
HISTORY_EVENTS = [*EVENTS, ("E10", "c1", None, ts("2025-06-01 12:00:00"), "page_view", None, "s10", 60.0)]
HISTORY_LINES = [r for r in ORDER_LINES if r[3] < ts("2025-07-01 00:00:00")]
NEW_LINES = [
    ("O6", 1, "f1", ts("2025-07-01 00:30:00"), "web", "P1", 1, 50.0),  # f1's first purchase
    ("R3", 1, "c1", ts("2025-07-01 09:00:00"), "web", "P1", -1, 50.0),  # a refund on D+1
    ("O7", 1, "r1", ts("2025-07-01 15:00:00"), "app", "P3", 2, 10.0),  # r1's first purchase
]
NEW_EVENTS = [("E11", "c2", None, ts("2025-07-01 08:00:00"), "login", None, "s11", 30.0)]
# r1 clicks a campaign on 06-30; its first purchase (O7, 07-01) is that click's conversion.
CAMPAIGN_CLICK = ("E12", "r1", None, ts("2025-06-30 18:00:00"), "email_click", None, None, None, "CMP-X")
# ticket_id, persona_id, opened_at, closed_at, channel, priority, category, status
HISTORY_TICKETS = [
    ("T1", "c1", ts("2025-06-01 10:00:00"), ts("2025-06-02 10:00:00"), "email", "normal", "billing", "closed"),
    ("T2", "c2", ts("2025-06-29 09:00:00"), None, "chat", "high", "product", "open"),
]
NEW_TICKETS = [("T3", "c2", ts("2025-07-01 11:00:00"), ts("2025-07-01 13:00:00"), "phone", "low", "other", "closed")]
# response_id, persona_id, answered_at, kind, score
HISTORY_ANSWERS = [
    ("A1", "c1", ts("2025-06-03 10:00:00"), "csat", 4),
    ("A2", "c2", ts("2025-05-01 10:00:00"), "nps", 10),
]
NEW_ANSWERS = [("A3", "c1", ts("2025-07-01 12:00:00"), "csat", 2), ("A4", "c2", ts("2025-07-01 12:00:00"), "nps", 6)]


def frame(spark, name, rows):
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructType

    from segengine.contract import spark_schema

    schema = spark_schema(name)
    if name == "events":
        raw = StructType([f for f in schema.fields if f.name != "event_date"])
        return (
            spark.createDataFrame(pad_rows(rows, len(raw.fields)), raw)
            .withColumn("event_date", F.to_date("event_ts"))
            .coalesce(1)
        )
    return spark.createDataFrame(rows, schema).coalesce(1)


def table_rows(df) -> list[dict]:
    return sorted((r.asDict() for r in df.collect()), key=lambda r: r["persona_id"])


@pytest.fixture(scope="module")
def refreshed(spark, base_config, tmp_path_factory):
    """Full refresh of 06-30, new rows of 07-01, incremental refresh of 07-01."""
    from segengine.features import build_features, compute_features
    from segengine.lake import Lake

    config = base_config.replace(warehouse=str(tmp_path_factory.mktemp("incr") / "warehouse"))
    lake = Lake.open(spark, config)
    for name, rows in (
        ("personas", PERSONAS),
        ("products", PRODUCTS),
        ("order_lines", HISTORY_LINES),
        ("events", [*HISTORY_EVENTS, CAMPAIGN_CLICK]),
        ("support_tickets", HISTORY_TICKETS),
        ("survey_responses", HISTORY_ANSWERS),
    ):
        lake.write(frame(spark, name, rows), name, mode="overwrite")
    first = compute_features(spark, lake, config, SNAPSHOT)
    lake.write(frame(spark, "order_lines", NEW_LINES), "order_lines", mode="append")
    lake.write(frame(spark, "events", NEW_EVENTS), "events", mode="append")
    lake.write(frame(spark, "support_tickets", NEW_TICKETS), "support_tickets", mode="append")
    lake.write(frame(spark, "survey_responses", NEW_ANSWERS), "survey_responses", mode="append")
    second = compute_features(spark, lake, config, NEXT)
    return {
        "config": config,
        "lake": lake,
        "first": first,
        "second": second,
        "day1": {
            r["persona_id"]: r
            for r in table_rows(lake.read("customer_features", partitions={"snapshot_date": SNAPSHOT}))
        },
        "incremental": table_rows(lake.read("customer_features", partitions={"snapshot_date": NEXT})),
        "full": table_rows(build_features(spark, lake, config, NEXT)),
    }


def test_first_run_is_full_and_the_next_day_incremental(refreshed):
    assert (refreshed["first"]["mode"], refreshed["first"]["reason"]) == ("full", "no feature state yet")
    assert refreshed["second"]["mode"] == "incremental"
    assert refreshed["second"]["since"] == SNAPSHOT.isoformat()


def test_incremental_equals_full_recompute_on_every_column_and_row(refreshed):
    assert [r["persona_id"] for r in refreshed["incremental"]] == [r["persona_id"] for r in refreshed["full"]]
    for got, want in zip(refreshed["incremental"], refreshed["full"]):
        assert got == want, got["persona_id"]


def test_support_survey_campaign_and_expansion_attributes_on_both_days(refreshed):
    """Hand-computed: the new attributes of 06-30 (full) and 07-01 (incremental; equal to
    the full recompute by the test above)."""
    cols = (
        "tickets_90d",
        "open_tickets",
        "median_hours_to_close_90d",
        "last_csat",
        "nps_category",
        "campaign_clicks_30d",
        "campaign_conversions_30d",
        "expansion_revenue",
    )
    after = {r["persona_id"]: r for r in refreshed["incremental"]}
    got = {
        (day, p): tuple(rows[p][c] for c in cols)
        for day, rows in (("d1", refreshed["day1"]), ("d2", after))
        for p in ("c1", "c2", "r1")
    }
    assert got == {
        # c1: T1 closed after 24 h; CSAT 4 then 2. Cycle 100 of a customer since 2024-06 (nothing in the
        # previous cycle); on 07-01 the refund R3 leaves 50.
        ("d1", "c1"): (1, 0, 24.0, 4, None, 0, 0, 100.0),
        ("d2", "c1"): (1, 0, 24.0, 2, None, 0, 0, 50.0),
        # c2: T2 still open, T3 opened and closed (2 h) on 07-01; NPS 10 then 6. O5 (12-29) is in the
        # previous cycle of 06-30 (20 -> 20: 0); on 07-01 both orders are (40 -> 0: -40).
        ("d1", "c2"): (1, 1, None, None, "promoter", 0, 0, 0.0),
        ("d2", "c2"): (2, 1, 2.0, None, "detractor", 0, 0, -40.0),
        # r1: the campaign click of 06-30 converts with the first purchase of 07-01; a refund is no purchase.
        ("d1", "r1"): (0, 0, None, None, None, 1, 0, None),
        ("d2", "r1"): (0, 0, None, None, None, 1, 1, None),
    }


def test_incremental_reads_only_the_new_days_files(refreshed):
    lake = refreshed["lake"]
    assert len(lake.files("order_lines")) == 2
    # order_lines: only the appended file; events: only the 07-01 partition's file
    # (the 07-02 partition is pruned by its event_ts statistics).
    assert refreshed["second"]["files_read"] == {"order_lines": 1, "events": 1}


def test_refund_arriving_on_the_next_day(refreshed):
    before, after = refreshed["day1"]["c1"], {r["persona_id"]: r for r in refreshed["incremental"]}["c1"]
    assert (before["revenue_lifetime"], before["refunds_lifetime"], before["refund_amount_lifetime"]) == (
        130.0,
        1,
        20.0,
    )
    assert (after["revenue_lifetime"], after["refunds_lifetime"], after["refund_amount_lifetime"]) == (80.0, 2, 70.0)
    # Cycle 2025-01-01 .. 07-01: O1 100 + O2 20 - R1 20 - R3 50.
    assert (after["monetary"], after["frequency"], after["orders_lifetime"]) == (50.0, 2, 3)
    # The 06-01 visit left the 30-day window.
    assert (before["visits_30d"], after["visits_30d"]) == (1, 0)


def test_first_purchase_on_the_next_day(refreshed):
    rows = {r["persona_id"]: r for r in refreshed["incremental"]}
    assert refreshed["day1"]["r1"]["persona_type"] == "prospect"
    r1 = rows["r1"]
    assert (r1["persona_type"], r1["first_purchase_date"], r1["tenure_days"], r1["recency_days"]) == (
        "customer",
        NEXT,
        0,
        0,
    )
    assert (r1["orders_lifetime"], r1["revenue_lifetime"], r1["preferred_channel"]) == (1, -30.0, "app")
    assert refreshed["day1"]["f1"]["persona_type"] == "visitor"
    assert (rows["f1"]["persona_type"], rows["f1"]["frequency"], rows["f1"]["favourite_category"]) == (
        "customer",
        1,
        "Shoes",
    )


def test_purchase_falling_out_of_the_cycle(refreshed):
    before, after = refreshed["day1"]["c2"], {r["persona_id"]: r for r in refreshed["incremental"]}["c2"]
    # O4 on 2024-12-30 is the first day of the 06-30 cycle and outside the 07-01 one.
    assert (before["frequency"], before["recency_days"], before["monetary"]) == (1, 182, 20.0)
    assert (after["frequency"], after["recency_days"], after["monetary"]) == (0, None, 0.0)
    assert (after["orders_lifetime"], after["logins_30d"], after["visits_30d"]) == (2, 1, 1)


def test_maintenance_keeps_the_next_refresh_incremental(spark, refreshed):
    """OPTIMIZE and VACUUM change versions, not rows: the state stays valid."""
    from segengine.features.refresh import plan_refresh
    from segengine.lake.maintenance import maintain

    config, lake = refreshed["config"], refreshed["lake"]
    tables = ["order_lines", "events", "personas", "customer_daily", "feature_state", "feature_state_items"]
    before = {t: lake.version(t) for t in tables}
    maintain(lake, tables=tables)
    after = {t: lake.version(t) for t in tables}
    assert after["order_lines"] > before["order_lines"]  # its two files were compacted
    plan = plan_refresh(spark, lake, config, NEXT + dt.timedelta(days=1))
    assert (plan.mode, plan.reason) == ("incremental", f"from the state of {NEXT}")


def test_fallbacks_to_full_recompute(spark, refreshed):
    """Older dates, the switch, moved cookies and late rows each force a full refresh."""
    from segengine.features.refresh import plan_refresh

    config, lake = refreshed["config"], refreshed["lake"]
    later = NEXT + dt.timedelta(days=1)
    assert plan_refresh(spark, lake, config, later).mode == "incremental"
    older = plan_refresh(spark, lake, config, SNAPSHOT)
    assert (older.mode, older.write_state) == ("full", False)
    assert plan_refresh(spark, lake, config, NEXT).write_state  # a rerun of the state's date rewrites it
    off = config.replace(features=config.features.replace(incremental=False))
    assert plan_refresh(spark, lake, off, later).reason == "features.incremental is off"
    far = plan_refresh(spark, lake, config, NEXT + dt.timedelta(days=30))
    assert far.mode == "full" and "more than" in far.reason

    # A new persona owns the cookie of E9 (a cookie-only event of 06-29): E9 moves to it.
    v9 = ("v9", None, None, "unknown-cookie", ts("2025-07-02 08:00:00")) + (None,) * 10
    lake.write(frame(spark, "personas", [v9]), "personas", mode="append")
    moved = plan_refresh(spark, lake, config, later)
    assert (moved.mode, moved.reason) == ("full", "a cookie with past cookie-only events changed persona")

    late = [("O8", 1, "c2", ts("2025-06-15 10:00:00"), "store", "P2", 1, 20.0)]
    lake.write(frame(spark, "order_lines", late), "order_lines", mode="append")
    stale = plan_refresh(spark, lake, config, later)
    assert stale.mode == "full" and stale.reason.startswith("late order_lines rows")


def test_incremental_refresh_of_generated_data_equals_the_full_recompute(
    spark, generated_lake, generated_config, generated, tmp_path
):
    """The generator's last day, refreshed from the state of the day before (1500 personas).

    The slowest test here (two refreshes of the generated warehouse): it is the one
    check of the incremental algebra on realistic data (refunds, churn, sessions,
    cookie-only visitors). The full recompute is the session's ``generated`` fixture.
    """
    from chispa import assert_df_equality

    from segengine.features import compute_features
    from segengine.lake import Lake

    # Bronze from the generated warehouse; features and state in this test's directory.
    config = generated_config.replace(
        tables={**generated_config.tables, **{t: str(tmp_path / t) for t in STATE_TABLES}}
    )
    lake = Lake.open(spark, config)
    end = dt.date.fromisoformat(config.generator.end_date)
    assert compute_features(spark, lake, config, end - dt.timedelta(days=1))["mode"] == "full"
    second = compute_features(spark, lake, config, end)
    assert second["mode"] == "incremental"
    got = lake.read("customer_features", partitions={"snapshot_date": end})
    assert_df_equality(got, generated, ignore_row_order=True, ignore_nullable=True, ignore_column_order=False)
    assert generated.where("persona_type = 'customer'").count() > 300
