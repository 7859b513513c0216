"""Which inputs exist: feature snapshot dates, the first day of bronze data, and the
refusals built on them (no features for a date, a snapshot before any data)."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner

from segengine.errors import FeatureSnapshotMissing, MissingInput
from segengine.features.snapshots import (
    feature_snapshot_dates,
    first_bronze_day,
    require_bronze_data,
    require_feature_partition,
)

FEATURES_DDL = "persona_id string, snapshot_date date, persona_type string"
D1, D2 = dt.date(2025, 5, 31), dt.date(2025, 6, 30)


def _features(spark, lake, *days):
    rows = [(pid, day, "customer") for day in days for pid in ("a", "b")]
    lake.write(spark.createDataFrame(rows, FEATURES_DDL), "customer_features", mode="overwrite")


def _load_bronze(lake, bronze, names=("personas", "products", "order_lines", "events")):
    for name in names:
        lake.write(bronze[name], name, mode="overwrite")


def test_snapshot_dates_are_the_partition_values(spark, lake):
    assert feature_snapshot_dates(lake) == []
    _features(spark, lake, D2, D1)
    assert feature_snapshot_dates(lake) == [D1, D2]


def test_a_missing_partition_names_the_date_and_the_latest_one(spark, lake):
    with pytest.raises(FeatureSnapshotMissing) as no_table:
        require_feature_partition(lake, D1)
    assert str(no_table.value) == (
        "no customer_features partition for 2025-05-31: there is no feature table yet; "
        "run `segengine features --date 2025-05-31` first"
    )
    _features(spark, lake, D1, D2)
    assert require_feature_partition(lake, "2025-06-30") == D2
    with pytest.raises(FeatureSnapshotMissing) as missing:
        require_feature_partition(lake, dt.date(2024, 1, 1))
    assert str(missing.value).startswith("no customer_features partition for 2024-01-01 (latest is 2025-06-30);")
    assert (missing.value.snapshot_date, missing.value.latest, missing.value.exit_code) == (
        dt.date(2024, 1, 1),
        D2,
        2,
    )


def test_evaluating_a_segment_on_a_missing_date_is_refused_not_empty(spark, lake):
    from segengine.rules import evaluate_segment

    _features(spark, lake, D2)
    with pytest.raises(FeatureSnapshotMissing, match="2025-07-01 \\(latest is 2025-06-30\\)"):
        evaluate_segment(spark, lake, {"name": "everyone"}, dt.date(2025, 7, 1))


def test_first_bronze_day_is_the_earliest_order_line_or_event_in_the_feature_time_zone(lake, bronze):
    assert first_bronze_day(lake, "UTC") is None
    _load_bronze(lake, bronze, ("events",))
    # Events only: the first is E8, 2025-04-01 09:00 UTC.
    assert first_bronze_day(lake, "UTC") == dt.date(2025, 4, 1)
    _load_bronze(lake, bronze, ("order_lines",))
    # O3, 2024-06-01 10:00 UTC, is earlier; at UTC+14 it is already the 2nd.
    assert first_bronze_day(lake, "UTC") == dt.date(2024, 6, 1)
    assert first_bronze_day(lake, "Pacific/Kiritimati") == dt.date(2024, 6, 2)


def test_features_need_some_bronze_data(lake, config):
    with pytest.raises(MissingInput, match="there are no order lines or events yet"):
        require_bronze_data(lake, config, D2)


def test_features_before_the_first_data_are_refused_and_forced_with_the_flag(spark, lake, config, bronze, monkeypatch):
    from segengine.cli import Context, cli
    from segengine.features import compute_features

    # The first order line is O3 on 2024-06-01, the first event in 2025: 2024-05-31 has no activity.
    _load_bronze(lake, bronze)

    with pytest.raises(MissingInput) as refused:
        compute_features(spark, lake, config, dt.date(2024, 5, 31))
    assert str(refused.value) == (
        "features for 2024-05-31: the first order line or event is on 2024-06-01, so the snapshot would "
        "describe no activity; choose a date from 2024-06-01 on (or --force)"
    )
    assert not lake.exists("customer_features")  # nothing written

    monkeypatch.setattr(Context, "spark", property(lambda self: spark))
    monkeypatch.setattr(Context, "lake", property(lambda self: lake))
    monkeypatch.setattr(Context, "config", property(lambda self: config))
    cli_refused = CliRunner().invoke(cli, ["features", "--date", "1999-01-01"])
    assert cli_refused.exit_code == 2, cli_refused.output
    assert cli_refused.output.splitlines() == [
        "error: features for 1999-01-01: the first order line or event is on 2024-06-01, so the snapshot would "
        "describe no activity; choose a date from 2024-06-01 on (or --force)"
    ]
    assert not lake.exists("customer_features")

    forced = CliRunner().invoke(cli, ["features", "--date", "2024-05-31", "--force", "--json"])
    assert forced.exit_code == 0, forced.output
    assert feature_snapshot_dates(lake) == [dt.date(2024, 5, 31)]
    # The same from the configuration key.
    allowed = config.replace(features=config.features.replace(allow_before_first_data=True))
    require_bronze_data(lake, allowed, dt.date(1999, 1, 1))


def test_every_reader_of_a_feature_date_refuses_a_missing_one(spark, lake, config):
    """Scoring, lookalikes, top-N, export and the rule views: one check, before any work."""
    from segengine.audiences.export import export_frame
    from segengine.audiences.registry import ensure_tables
    from segengine.audiences.topn import top_n_frame
    from segengine.models import lookalike
    from segengine.models.clv import score_clv
    from segengine.models.segments import score_segments, train_segments
    from segengine.rules import register_views

    _features(spark, lake, D2)
    ensure_tables(spark, lake)
    seed = spark.createDataFrame([("a",)], "persona_id string")
    readers = {
        "register_views": lambda day: register_views(spark, lake, day),
        "top_n_frame": lambda day: top_n_frame(lake, seed, 1, "monetary", "desc", day),
        "export_frame": lambda day: export_frame(lake, "some-audience", ["email"], day),
        "lookalike.expand": lambda day: lookalike.expand(spark, lake, config, seed, 1, ["monetary"], day),
        "score_segments": lambda day: score_segments(spark, lake, config, day),
        "train_segments": lambda day: train_segments(spark, lake, config, day),
        "score_clv": lambda day: score_clv(spark, lake, config, day),
    }
    for name, read in readers.items():
        with pytest.raises(FeatureSnapshotMissing, match=r"for 2025-05-31 \(latest is 2025-06-30\)"):
            read(D1)
        assert feature_snapshot_dates(lake) == [D2], name  # nothing written for the missing date
