"""A warehouse without an ``events`` table: event attributes are null, refreshes still run.

The history of ``test_incremental`` without its events: a full refresh of 06-30, an
incremental one of 07-01 (equal to the full recompute), then the events table appears
and the next refresh is full.
"""

from __future__ import annotations

import datetime as dt

import pytest

from segengine.features.catalog import EVENT_ATTRIBUTES

from .conftest import PERSONAS, PRODUCTS, SNAPSHOT
from .test_incremental import HISTORY_EVENTS, HISTORY_LINES, NEW_LINES, NEXT, frame, table_rows


@pytest.fixture(scope="module")
def no_events(spark, base_config, tmp_path_factory):
    from segengine.features import build_features, compute_features
    from segengine.lake import Lake

    config = base_config.replace(warehouse=str(tmp_path_factory.mktemp("noevents") / "warehouse"))
    lake = Lake.open(spark, config)
    for name, rows in (("personas", PERSONAS), ("products", PRODUCTS), ("order_lines", HISTORY_LINES)):
        lake.write(frame(spark, name, rows), name, mode="overwrite")
    first = compute_features(spark, lake, config, SNAPSHOT)
    lake.write(frame(spark, "order_lines", NEW_LINES), "order_lines", mode="append")
    second = compute_features(spark, lake, config, NEXT)
    out = {
        "first": first,
        "second": second,
        "incremental": table_rows(lake.read("customer_features", partitions={"snapshot_date": NEXT})),
        "full": table_rows(build_features(spark, lake, config, NEXT)),
    }
    lake.write(frame(spark, "events", HISTORY_EVENTS), "events", mode="overwrite")
    out["after_events"] = compute_features(spark, lake, config, NEXT + dt.timedelta(days=1))
    return out


def test_refreshes_run_and_the_incremental_one_equals_the_full_recompute(no_events):
    assert no_events["first"]["mode"] == "full"
    assert no_events["second"]["mode"] == "incremental"
    assert no_events["second"]["files_read"] == {"order_lines": 1, "events": 0}
    assert no_events["incremental"] == no_events["full"]


def test_event_attributes_are_null_not_zero(no_events):
    rows = no_events["incremental"]
    assert "visits_30d" in EVENT_ATTRIBUTES and "active_days_90d" not in EVENT_ATTRIBUTES
    for name in EVENT_ATTRIBUTES:
        assert {r[name] for r in rows} == {None}, name
    # Order-based attributes are as with events: c1's refund of 07-01 (see test_incremental).
    c1 = next(r for r in rows if r["persona_id"] == "c1")
    assert (c1["revenue_lifetime"], c1["refunds_lifetime"], c1["refund_amount_lifetime"]) == (80.0, 2, 70.0)


def test_an_events_table_created_after_the_state_makes_the_next_refresh_full(no_events):
    after = no_events["after_events"]
    assert (after["mode"], after["reason"]) == ("full", f"the events table was created after the state of {NEXT}")


def test_support_survey_and_campaign_attributes_are_null_without_their_tables(no_events):
    from segengine.features.support import CAMPAIGN_ATTRIBUTES, SURVEY_ATTRIBUTES, TICKET_ATTRIBUTES

    rows = no_events["incremental"]
    for name in TICKET_ATTRIBUTES + SURVEY_ATTRIBUTES + CAMPAIGN_ATTRIBUTES:
        assert {r[name] for r in rows} == {None}, name
    # Expansion revenue needs only order lines: c1 bought before the cycle.
    c1 = next(r for r in rows if r["persona_id"] == "c1")
    assert c1["expansion_revenue"] == 50.0
