"""The daily pipeline's optional maintenance step: last when enabled, recorded in ``runs``."""

from __future__ import annotations

import dataclasses
import datetime as dt

from segengine.lake import Lake
from segengine.pipeline.daily import DAILY_STEPS, MAINTENANCE_STEP, daily_steps, run_steps


def _enabled(config):
    return dataclasses.replace(config, maintenance=dataclasses.replace(config.maintenance, enabled=True))


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
