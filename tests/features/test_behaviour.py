"""Behaviour features from events."""

import datetime as dt

from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from .conftest import SNAPSHOT, by_persona, features, pad_rows, ts


def test_cookie_only_events_count_for_the_persona_with_that_cookie(rows):
    e1 = rows["e1"]
    # Sessions s1 (2 events) and s2 in the last 30 days; the event after the snapshot is ignored.
    assert (e1["visits_30d"], e1["time_on_site_30d"], e1["product_views_30d"]) == (2, 8.0, 1)
    assert (e1["last_visit_date"], e1["days_since_last_visit"]) == (dt.date(2025, 6, 29), 1)


def test_email_engagement_counts_and_open_rate(rows):
    c1 = rows["c1"]
    assert (c1["email_opens_90d"], c1["email_clicks_90d"], c1["email_open_rate_90d"]) == (1, 1, 1.0)
    assert rows["e1"]["email_open_rate_90d"] is None  # no email sent


def test_visit_older_than_30_days_counts_only_for_last_visit(rows):
    c1 = rows["c1"]
    assert (c1["logins_30d"], c1["visits_30d"], c1["days_since_last_visit"]) == (0, 0, 90)


def test_active_days_combine_purchases_and_visits(rows):
    # c1: purchase 06-20 (recent window from 04-02); 04-01 login and 01-15 purchase (previous, from 01-02).
    assert (rows["c1"]["active_days_90d"], rows["c1"]["active_days_prev_90d"]) == (1, 2)
    assert (rows["e1"]["active_days_90d"], rows["e1"]["active_days_prev_90d"]) == (2, 0)


def test_last_visit_before_the_daily_history_is_found_by_both_paths(spark, lake, config, bronze):
    """Visits before the event history start (2024-12-30 for this snapshot) only feed the last visit."""
    from segengine.contract import spark_schema
    from segengine.features import compute_features
    from segengine.features.state import event_history_start

    assert event_history_start(SNAPSHOT, config.features) == dt.date(2024, 12, 30)
    raw = StructType([f for f in spark_schema("events").fields if f.name != "event_date"])
    older = spark.createDataFrame(
        pad_rows(
            [
                # c2: one login, months before the history start.
                ("X1", "c2", None, ts("2024-06-01 09:00:00"), "login", None, None, None),
                # r1: an old visit and a recent one: the recent one is the last visit.
                ("X2", "r1", None, ts("2024-06-01 09:00:00"), "page_view", None, "s-x2", 30.0),
                ("X3", "r1", None, ts("2025-05-01 09:00:00"), "page_view", None, "s-x3", 30.0),
                # c1 (cookie ck-c1): an old cookie-only visit; its login of 2025-04-01 is later.
                ("X4", None, "ck-c1", ts("2024-11-15 09:00:00"), "page_view", None, "s-x4", 30.0),
                # e1: an old email open is no visit.
                ("X5", None, "ck-e1", ts("2024-10-01 09:00:00"), "email_open", None, None, None),
            ],
            len(raw.fields),
        ),
        raw,
    ).withColumn("event_date", F.to_date("event_ts"))
    data = dict(bronze, events=bronze["events"].unionByName(older))
    for name, df in data.items():
        lake.write(df, name, mode="overwrite")
    compute_features(spark, lake, config, SNAPSHOT)
    written = by_persona(lake.read("customer_features", partitions={"snapshot_date": SNAPSHOT}))
    pure = by_persona(features(spark, data, config.features))
    expected = {"c2": (dt.date(2024, 6, 1), 394), "r1": (dt.date(2025, 5, 1), 60), "c1": (dt.date(2025, 4, 1), 90)}
    expected["e1"] = (dt.date(2025, 6, 29), 1)
    for rows in (written, pure):
        got = {p: (rows[p]["last_visit_date"], rows[p]["days_since_last_visit"]) for p in expected}
        assert got == expected
        # The old visits are outside every window.
        assert (rows["c2"]["logins_30d"], rows["c2"]["visits_30d"], rows["c2"]["active_days_prev_90d"]) == (0, 0, 0)
    assert written["r1"]["visits_30d"] == 0  # 2025-05-01 is 60 days back


def test_event_days_count_sessions_per_day_and_sum_the_rest(spark):
    from segengine.features.behaviour import EVENT_DAY_COLUMNS, event_days

    d1, d2 = dt.date(2025, 6, 1), dt.date(2025, 6, 2)
    rows = [
        # persona, day, event_id, type, session, duration_s
        ("p1", d1, "e1", "page_view", "s1", 60.0),
        ("p1", d1, "e2", "product_view", "s1", 30.0),
        ("p1", d1, "e3", "page_view", None, 10.0),  # no session: a visit of its own
        ("p1", d1, "e4", "email_open", None, None),  # not a visit
        ("p1", d1, "e5", "login", "s2", None),  # a visit without duration
        ("p1", d2, "e6", "page_view", "s2", 5.0),  # s2 crosses midnight: a visit on both days
        ("p1", d2, "e7", "email_sent", None, None),
        ("p2", d1, "e8", "email_click", None, None),
    ]
    events = spark.createDataFrame(
        rows,
        "persona_id string, event_day date, event_id string, event_type string, session_id string, duration_s double",
    )
    got = {(r["persona_id"], r["day"]): tuple(r[c] for c in EVENT_DAY_COLUMNS) for r in event_days(events).collect()}
    # visit_events, visits, visit_micros, product_views, add_to_cart, logins, feature_uses,
    # email_opens, email_clicks, email_sent
    assert got == {
        ("p1", d1): (4, 3, 100_000_000, 1, 0, 1, 0, 1, 0, 0),
        ("p1", d2): (1, 1, 5_000_000, 0, 0, 0, 0, 0, 0, 1),
        ("p2", d1): (0, 0, 0, 0, 0, 0, 0, 0, 1, 0),
    }
