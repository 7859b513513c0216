"""Customer 360 profile of one persona, from hand-made bronze, feature and model tables."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from segengine.errors import SegengineError
from segengine.insights.profile import customer_profile, format_profile, profile_json

from .conftest import D1, D2


@pytest.fixture
def lake_with_everything(spark, two_snapshots):
    lake = two_snapshots
    ts = dt.datetime
    lake.write(
        spark.createDataFrame(
            [
                ("a", "a@example.com", None, "ck-a", "FR", "Lyon", "Retail", True, False),
                ("b", None, None, "ck-b", "DE", None, None, False, False),
            ],
            "persona_id string, email string, phone string, cookie_id string, country string, city string, "
            "industry string, consent_email boolean, consent_sms boolean",
        ),
        "personas",
        mode="overwrite",
    )
    lake.write(
        spark.createDataFrame(
            [
                ("o1", 1, "a", ts(2025, 5, 3, 10), "web", "P1", 2, 10.0),
                ("o1", 2, "a", ts(2025, 5, 3, 10), "web", "P2", 1, 5.0),
                ("o2", 1, "a", ts(2025, 6, 1, 9), "store", "P1", -1, 10.0),
                ("o3", 1, "a", ts(2025, 7, 5, 9), "web", "P1", 3, 10.0),  # after the snapshot
                ("o4", 1, "b", ts(2025, 6, 1, 9), "web", "P1", 1, 10.0),
            ],
            "order_id string, line_no int, persona_id string, order_ts timestamp, channel string, product_id string, "
            "quantity int, unit_price double",
        ),
        "order_lines",
        mode="overwrite",
    )
    lake.write(
        spark.createDataFrame(
            [
                ("e1", "a", "ck-a", ts(2025, 6, 30, 8), "page_view", None, "s1", 12, dt.date(2025, 6, 30)),
                ("e2", "a", "ck-a", ts(2025, 7, 1, 8), "email_open", None, "s2", 0, dt.date(2025, 7, 1)),
                ("e3", "a", "ck-a", ts(2025, 3, 1, 8), "login", None, "s0", 0, dt.date(2025, 3, 1)),  # too old
                ("e4", "b", "ck-b", ts(2025, 7, 1, 9), "login", None, "s3", 0, dt.date(2025, 7, 1)),
            ],
            "event_id string, persona_id string, cookie_id string, event_ts timestamp, event_type string, "
            "product_id string, session_id string, duration_s int, event_date date",
        ),
        "events",
        mode="overwrite",
    )
    lake.write(
        spark.createDataFrame(
            [("P1", "Boots", "Shoes"), ("P2", "Scarf", "Accessories")],
            "product_id string, name string, category string",
        ),
        "products",
        mode="overwrite",
    )
    recs = spark.createDataFrame(
        [("a", "P2", 1, 90, "als", D2), ("a", "P1", 2, 40, "als", D2), ("b", "P2", 1, 70, "als", D2)],
        "persona_id string, product_id string, rank int, score int, recommender string, snapshot_date date",
    )
    lake.overwrite_partition(recs, "recommendations", snapshot_date=D2)
    lake.write(
        spark.createDataFrame([("A1", "a"), ("A2", "b")], "audience_id string, persona_id string"),
        "audience_members",
        mode="overwrite",
    )
    lake.write(
        spark.createDataFrame(
            [("A1", "Big spenders", "static"), ("A2", "Leads", "dynamic")],
            "audience_id string, name string, kind string",
        ),
        "audiences",
        mode="overwrite",
    )
    return lake


def test_profile_has_every_section_for_one_persona(spark, config, lake_with_everything):
    p = customer_profile(spark, lake_with_everything, config, "a")
    assert p["snapshot_date"] == "2025-07-01"  # latest snapshot by default
    assert p["identity"]["email"] == "a@example.com" and p["identity"]["city"] == "Lyon"
    assert p["consents"] == {"consent_email": True, "consent_sms": False}
    assert p["tiers"]["ai_segment"] == "Champions" and p["tiers"]["value_tier"] == "top"
    assert p["clv"]["predicted"] == 300.0
    summary = p["orders"]["summary"]
    # o3 is after the snapshot and not counted; o2 is a refund of 10: not a purchase, so
    # orders agrees with the feature table's orders_lifetime (it said 2).
    assert (summary["orders"], summary["lines"], summary["net_revenue"], summary["refunded"]) == (1, 3, 15.0, 10.0)
    assert summary["refund_only_orders"] == 1
    assert summary["channels"] == ["store", "web"]
    assert [o["order_id"] for o in p["orders"]["recent"]] == ["o2", "o1"]
    assert [e["event_type"] for e in p["recent_events"]] == ["email_open", "page_view"]
    assert [(h["snapshot_date"], h["ai_segment"]) for h in p["segment_history"]] == [
        ("2025-01-01", "Champions"),
        ("2025-07-01", "Champions"),
    ]
    assert [(r["product_id"], r["rank"], r["score"], r["name"]) for r in p["recommendations"]] == [
        ("P2", 1, 90, "Scarf"),
        ("P1", 2, 40, "Boots"),
    ]
    assert p["audiences"] == [{"audience_id": "A1", "name": "Big spenders", "kind": "static"}]
    json.loads(profile_json(p))  # JSON-serialisable as is
    assert "Big spenders" in format_profile(p)


def test_profile_at_an_earlier_snapshot_uses_that_partition(spark, config, lake_with_everything):
    p = customer_profile(spark, lake_with_everything, config, "b", snapshot_date=D1)
    assert p["tiers"]["ai_segment"] == "Champions"  # b moved to At risk only at D2
    assert p["recommendations"] == []  # no recommendations on or before D1
    assert p["orders"]["summary"]["orders"] == 0


def test_a_date_without_features_is_the_shared_one_line_error(spark, config, lake_with_everything):
    with pytest.raises(SegengineError) as err:
        customer_profile(spark, lake_with_everything, config, "a", snapshot_date=dt.date(2020, 1, 1))
    assert str(err.value).startswith("no customer_features partition for 2020-01-01 (latest is 2025-07-01); ")


def test_unknown_persona_is_a_clear_error(spark, config, lake_with_everything):
    with pytest.raises(SegengineError, match="persona 'zz' not found"):
        customer_profile(spark, lake_with_everything, config, "zz")


def test_profile_cli_prints_json(spark, config, lake_with_everything, monkeypatch):
    from segengine.cli import Context, cli

    # Reuse the test session and warehouse instead of building a new session.
    monkeypatch.setattr(Context, "config", property(lambda self: config))
    monkeypatch.setattr(Context, "spark", property(lambda self: spark))
    monkeypatch.setattr(Context, "lake", property(lambda self: lake_with_everything))
    result = CliRunner().invoke(cli, ["profile", "a", "--date", "2025-07-01", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["tiers"]["ai_segment"] == "Champions"
    bad = CliRunner().invoke(cli, ["profile", "zz"])
    assert bad.exit_code == 2 and "not found" in bad.output


def test_order_money_is_rounded_to_the_cent(spark):
    import datetime as dt

    from segengine.insights.profile import _order_summary

    ts = dt.datetime(2025, 6, 1, 12)
    lines = spark.createDataFrame(
        [("o1", ts, "web", 1, 0.1), ("o1", ts, "web", 1, 0.2), ("o2", ts, "web", -1, 0.1)],
        "order_id string, order_ts timestamp, channel string, quantity int, unit_price double",
    )
    totals, recent = _order_summary(lines)
    assert (totals["net_revenue"], totals["refunded"]) == (0.2, 0.1)
    assert sorted(o["value"] for o in recent) == [-0.1, 0.3]


def test_profile_leaves_out_other_owners_private_audiences(spark, config, lake_with_everything):
    lake = lake_with_everything
    lake.write(
        spark.createDataFrame(
            [("A1", "Big spenders", "static", "ann", "private"), ("A3", "Shared list", "static", "ann", "shared")],
            "audience_id string, name string, kind string, owner string, visibility string",
        ),
        "audiences",
        mode="overwrite",
        evolve_schema=True,
    )
    lake.write(spark.createDataFrame([("A3", "a")], "audience_id string, persona_id string"), "audience_members")

    def names(user):
        return [a["name"] for a in customer_profile(spark, lake, config, "a", user=user)["audiences"]]

    assert names("ann") == ["Big spenders", "Shared list"]
    assert names("bob") == ["Shared list"]  # ann's private audience is not bob's to see
    assert names(None) == ["Big spenders", "Shared list"]  # the system sees every audience
