"""The refresh planner's slices of bronze (pure date arithmetic, no Spark)."""

import datetime as dt
from types import SimpleNamespace

from segengine.features.refresh import bronze_reads
from segengine.features.state import event_history_start

FCONF = SimpleNamespace(timezone="Europe/Berlin", cycle_months=6, active_days=90)
DAY = dt.date(2025, 6, 30)


def test_incremental_reads_only_the_local_days_after_the_state():
    reads = bronze_reads("incremental", DAY, dt.date(2025, 6, 27), FCONF)
    # 28 June 00:00 in Berlin (UTC+2) to the last microsecond of 30 June there.
    bounds = (dt.datetime(2025, 6, 27, 22, tzinfo=dt.UTC), dt.datetime(2025, 6, 30, 21, 59, 59, 999999, tzinfo=dt.UTC))
    assert reads["order_lines"] == {"order_ts": bounds}
    # event_date partitions with a day of slack on each side
    assert reads["events"] == {"event_date": (dt.date(2025, 6, 27), dt.date(2025, 7, 1)), "event_ts": bounds}
    assert "earlier_events" not in reads


def test_full_reads_split_the_events_at_the_event_history_start():
    reads = bronze_reads("full", DAY, None, FCONF)
    start = event_history_start(DAY, FCONF)
    assert reads["events"] == {"event_date": (start - dt.timedelta(days=1), DAY + dt.timedelta(days=1))}
    assert reads["earlier_events"] == {"event_date": (None, start)}
    assert "order_lines" not in reads  # every order line


def test_both_modes_read_the_campaign_window():
    full, incremental = bronze_reads("full", DAY, None, FCONF), bronze_reads("incremental", DAY, DAY, FCONF)
    for name in ("campaign_events", "campaign_order_lines"):
        assert full[name] == incremental[name]
    assert full["campaign_events"] == {"event_date": (dt.date(2025, 5, 24), dt.date(2025, 7, 1))}
