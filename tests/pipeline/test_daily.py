"""The daily pipeline: the optional maintenance step (last when enabled, recorded in ``runs``)
and a blocked audience refresh as a failed step."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from segengine.lake import Lake
from segengine.pipeline.daily import DAILY_STEPS, MAINTENANCE_STEP, daily_steps, run_steps


def _enabled(config):
    return config.replace(maintenance=config.maintenance.replace(enabled=True))


def test_maintenance_is_off_by_default_and_last_when_enabled(config):
    assert config.maintenance.enabled is False
    assert [s.name for s in daily_steps(config)] == [s.name for s in DAILY_STEPS]
    assert [s.name for s in daily_steps(_enabled(config))] == [s.name for s in DAILY_STEPS] + ["maintenance"]
    # Named steps run as named, whatever the setting.
    assert [s.name for s in daily_steps(_enabled(config), ["features"])] == ["features"]
    assert [s.name for s in daily_steps(config, ["maintenance"])] == ["maintenance"]


def test_maintenance_step_compacts_and_records_its_run(spark, config):
    cfg = _enabled(config)
    lake = Lake.open(spark, cfg)
    for i in range(3):
        df = spark.createDataFrame([("a", i)], "audience_id string, persona_id long").coalesce(1)
        lake.write(df, "audience_members")

    result = run_steps(spark, lake, cfg, dt.date(2025, 6, 30), [MAINTENANCE_STEP], echo=lambda _: None)

    assert result["status"] == "ok"
    summary = result["steps"][0]["result"]
    assert (summary["tables"], summary["files_compacted"], summary["files_added"]) == (1, 3, 1)
    # 7 days of retention: the compacted files stay for time travel.
    assert summary["files_removed"] == 0
    assert len(lake.files("audience_members")) == 1
    (run,) = lake.read_rows("runs")
    assert (run["step"], run["status"], run["snapshot_date"]) == ("maintenance", "ok", dt.date(2025, 6, 30))


def _two_days_of_features(spark, lake):
    """p1 spends 500 then 20, p2 300 then 400: ``monetary >= 350`` is p1, then p2."""
    rows = [
        ("p1", dt.date(2025, 6, 1), "customer", 500.0),
        ("p2", dt.date(2025, 6, 1), "customer", 300.0),
        ("p1", dt.date(2025, 6, 2), "customer", 20.0),
        ("p2", dt.date(2025, 6, 2), "customer", 400.0),
    ]
    schema = "persona_id string, snapshot_date date, persona_type string, monetary double"
    lake.write(spark.createDataFrame(rows, schema), "customer_features", mode="overwrite")


def test_a_blocked_audience_refresh_is_a_failed_step_until_allowed(spark, lake, config):
    from segengine.audiences import create_audience, members, refresh_all
    from segengine.errors import SegengineError
    from segengine.pipeline.daily import STEPS_BY_NAME, run_daily

    _two_days_of_features(spark, lake)
    doc = {"name": "top", "where": {"attr": "monetary", "op": ">=", "value": 350}}
    aid = create_audience(spark, lake, config, "top", "ann", "dynamic", "rules", doc)
    refresh_all(spark, lake, config, dt.date(2025, 6, 1))
    day = dt.date(2025, 6, 2)

    result = run_steps(spark, lake, config, day, [STEPS_BY_NAME["audiences"]], echo=lambda _: None)

    assert result["status"] == "failed"
    (run,) = lake.read_rows("runs")
    assert (run["step"], run["status"]) == ("audiences", "failed")
    assert run["message"].startswith(
        "LargeAudienceChange: 1 of 1 audiences blocked for 2025-06-02: top (1 of 1 members would leave, 100%)"
    )
    assert [r.persona_id for r in members(spark, lake, aid).collect()] == ["p1"]
    with pytest.raises(SegengineError, match="failed at step audiences: LargeAudienceChange"):
        run_daily(spark, lake, config, day, steps=["audiences"], echo=lambda _: None)

    ok = run_daily(spark, lake, config, day, steps=["audiences"], echo=lambda _: None, allow_large_change=True)
    assert ok["status"] == "ok"
    assert [r.persona_id for r in members(spark, lake, aid).collect()] == ["p2"]


def test_pipeline_train_force_promote_reaches_every_training_step(spark, lake, config, monkeypatch):
    from click.testing import CliRunner

    import segengine.session
    from segengine.cli import cli
    from segengine.models import clv, propensity, recommend, segments

    calls = []
    for module, name in (
        (segments, "train_segments"),
        (clv, "train_clv"),
        (recommend, "train_recommendations"),
        (propensity, "train_propensity"),
    ):
        monkeypatch.setattr(module, name, lambda *a, _n=name, **k: calls.append((_n, k)) or {"rows": 1})
    monkeypatch.setattr(segengine.session, "build_spark", lambda *a, **k: spark)
    Path(config.warehouse).mkdir(parents=True)  # the command refuses a missing warehouse
    base = ["--env", "local", "--conf", f"warehouse={config.warehouse}", "--conf", f"delta.backend={lake.backend.name}"]

    forced = CliRunner().invoke(cli, [*base, "pipeline", "train", "--date", "2025-06-30", "--force-promote"])
    assert forced.exit_code == 0, forced.output
    plain = CliRunner().invoke(cli, [*base, "pipeline", "train", "--date", "2025-06-30"])
    assert plain.exit_code == 0, plain.output
    assert calls == [
        ("train_segments", {"force_promote": True}),
        ("train_clv", {"force_promote": True}),
        ("train_recommendations", {"force_promote": True}),
        ("train_propensity", {"force_promote": True}),
        ("train_segments", {}),
        ("train_clv", {}),
        ("train_recommendations", {}),
        ("train_propensity", {}),
    ]


def test_runs_rows_carry_the_spark_application_id_and_an_old_runs_table_gains_the_column(spark, config):
    from segengine.pipeline.daily import Step

    class TwoSegments(Step):
        def function(self):
            return lambda *args: {"model_version": 3, "segments": {"Champions": 2, "At risk": 3}}

    lake = Lake.open(spark, config)
    old = "run_id string, snapshot_date date, step string, status string, rows long, seconds double, "
    old += "started_at timestamp, message string"
    day = dt.date(2025, 6, 30)
    lake.write_rows([("r0", day, "features", "ok", 3, 1.0, dt.datetime(2025, 6, 30, 1), "")], old, "runs")

    result = run_steps(spark, lake, config, day, [TwoSegments("score", "-", "")], echo=lambda _: None)

    assert result["status"] == "ok"
    rows = sorted((r["step"], r["rows"], r["spark_app_id"]) for r in lake.read_rows("runs"))
    assert rows == [("features", 3, None), ("score", 5, spark.sparkContext.applicationId)]


@pytest.mark.parametrize(
    ("summary", "rows"),
    [
        ({"customers_scored": 7, "model_version": 2}, 7),  # score_clv
        ({"version": 4, "train_customers": 11, "holdout_customers": 5}, 11),  # train_clv
        ({"users": 9, "items": 4}, 9),  # train_recommendations
        ({"k": 4, "segments": {"a": 2, "b": 3}, "b2b_segments": {"x": 1}}, 5),  # train_segments
        ({"audiences": [{"name": "a", "size": 3}, {"name": "b", "size": 4}], "blocked": []}, 7),  # audiences
        ({"audiences": [], "blocked": []}, 0),
        ({"loaded": {"orders": 2, "events": 3}}, 5),  # ingest
        ({"scored_b2b": True}, None),
        ("not a dict", None),
    ],
)
def test_every_step_summary_gives_its_row_count(summary, rows):
    from segengine.pipeline.daily import _rows_of

    assert _rows_of(summary) == rows
