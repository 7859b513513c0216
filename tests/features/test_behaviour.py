"""Behaviour features from events."""

import datetime as dt


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
