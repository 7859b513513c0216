"""One run per (pipeline, date): the run lock, its race, its expiry, the exit codes a
scheduler acts on (0 ok, 1 a step failed, 2 bad input, 3 locked) and the step lines a
log collector reads."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from segengine.errors import RunLocked, StepFailed
from segengine.pipeline.lock import RunLock, active_holders, hold, unlock

DAY = dt.date(2025, 6, 30)
T0 = dt.datetime(2025, 7, 1, 6, 0)


def _lock(lake, run_id, minutes=60, at=T0, day=DAY):
    return RunLock(lake, "daily", day, dt.timedelta(minutes=minutes), run_id=run_id, now=lambda: at)


def _row(run_id, event, at, expires_at):
    return {
        "pipeline": "daily",
        "snapshot_date": DAY,
        "run_id": run_id,
        "event": event,
        "at": at,
        "expires_at": expires_at,
        "holder": "h",
    }


def test_active_holders_follow_acquire_renew_release_and_expiry():
    hour = dt.timedelta(hours=1)
    rows = [
        _row("a", "acquire", T0, T0 + hour),
        _row("a", "renew", T0 + hour / 2, T0 + 2 * hour),
        _row("b", "acquire", T0, T0 + hour),
        _row("b", "release", T0 + hour / 4, T0 + hour / 4),
        _row("c", "acquire", T0 - 3 * hour, T0 - 2 * hour),
    ]
    # a renewed past the hour, b released, c expired.
    assert [h.run_id for h in active_holders(rows, "daily", DAY, T0 + hour * 1.5)] == ["a"]
    assert active_holders(rows, "daily", DAY, T0 + hour * 2) == []
    assert active_holders(rows, "daily", DAY + dt.timedelta(days=1), T0) == []
    assert active_holders(rows, "training", DAY, T0) == []


def test_second_run_of_a_date_is_refused_naming_the_first_and_another_date_runs(lake):
    with hold(lake, "daily", DAY, 60, run_id="first"):
        with pytest.raises(RunLocked, match=r"daily pipeline for 2025-06-30 is already running: run first") as err:
            _lock(lake, "second", at=dt.datetime.now(dt.UTC).replace(tzinfo=None)).acquire()
        assert err.value.exit_code == 3
        assert "segengine pipeline unlock --date 2025-06-30" in str(err.value)
        with hold(lake, "daily", DAY + dt.timedelta(days=1), 60):
            pass
    # Released at the end of the block: the date is free again.
    with hold(lake, "daily", DAY, 60, run_id="third"):
        pass
    events = sorted((r["run_id"], r["event"]) for r in lake.read_rows("run_locks") if r["snapshot_date"] == DAY)
    assert events == [
        ("first", "acquire"),
        ("first", "release"),
        ("second", "acquire"),
        ("second", "release"),
        ("third", "acquire"),
        ("third", "release"),
    ]


def test_of_two_runs_announcing_at_once_only_the_earlier_commit_holds(lake):
    a, b = _lock(lake, "a"), _lock(lake, "b")
    version_a = a.announce()
    version_b = b.announce()
    assert version_b > version_a
    # b decides first: a's row is in its snapshot, so b loses whatever the clocks say.
    with pytest.raises(RunLocked, match="run a"):
        b.decide(version_b)
    # a's snapshot does not hold b's row: a holds the lock.
    a.decide(version_a)
    assert [h.run_id for h in active_holders(lake.read_rows("run_locks"), "daily", DAY, T0)] == ["a"]


def test_a_crashed_runs_lock_expires_and_unlock_frees_it_at_once(lake):
    _lock(lake, "crashed", minutes=30).acquire()  # never released
    # Before the expiry the date is held; after it, taken over.
    with pytest.raises(RunLocked, match="run crashed"):
        _lock(lake, "early", at=T0 + dt.timedelta(minutes=29)).acquire()
    _lock(lake, "late", at=T0 + dt.timedelta(minutes=31)).acquire()

    # A lock that would last hours: unlock releases it for the next run.
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    _lock(lake, "stuck", minutes=600, at=now, day=DAY + dt.timedelta(days=1)).acquire()
    assert [h.run_id for h in unlock(lake, "daily", DAY + dt.timedelta(days=1))] == ["stuck"]
    assert unlock(lake, "daily", DAY + dt.timedelta(days=1)) == []
    with hold(lake, "daily", DAY + dt.timedelta(days=1), 60):
        pass


def test_renewal_waits_for_a_quarter_of_the_timeout(lake):
    clock = {"now": T0}
    lock = RunLock(lake, "daily", DAY, dt.timedelta(minutes=60), run_id="r", now=lambda: clock["now"])
    lock.acquire()
    clock["now"] = T0 + dt.timedelta(minutes=10)
    lock.renew_if_due()
    clock["now"] = T0 + dt.timedelta(minutes=16)
    lock.renew_if_due()
    (holder,) = active_holders(lake.read_rows("run_locks"), "daily", DAY, clock["now"])
    assert holder.expires_at == T0 + dt.timedelta(minutes=76)
    assert [r["event"] for r in lake.read_rows("run_locks")].count("renew") == 1


def test_daily_run_of_a_locked_date_exits_3_and_a_failed_step_exits_1(spark, lake, config, monkeypatch):
    from click.testing import CliRunner

    import segengine.session
    from segengine.cli import cli
    from segengine.pipeline import daily

    monkeypatch.setattr(segengine.session, "build_spark", lambda *a, **k: spark)
    base = ["--env", "local", "--conf", f"warehouse={config.warehouse}", "--conf", f"delta.backend={lake.backend.name}"]
    with hold(lake, "daily", DAY, 60, run_id="holder"):
        result = CliRunner().invoke(cli, [*base, "pipeline", "daily", "--date", str(DAY)])
    assert result.exit_code == 3, result.output
    assert "already running: run holder" in result.output
    assert not lake.exists("runs")  # refused before any step

    def boom(*_args, **_kwargs):
        raise ValueError("planted failure\nsecond line")

    monkeypatch.setattr(daily, "ingest_step", boom)
    lines: list[str] = []
    with pytest.raises(StepFailed, match="failed at step ingest: ValueError: planted failure") as err:
        daily.run_daily(
            spark, lake, config, DAY, steps=["ingest", "features", "insights"], echo=lines.append, log_format="json"
        )
    assert err.value.exit_code == 1
    logged = [json.loads(line) for line in lines]
    assert [(r["step"], r["status"], r["date"]) for r in logged] == [
        ("ingest", "failed", "2025-06-30"),
        ("features", "not_run", "2025-06-30"),
        ("insights", "not_run", "2025-06-30"),
    ]
    assert len({r["run_id"] for r in logged}) == 1 and set(logged[0]) == {
        "run_id",
        "date",
        "step",
        "status",
        "rows",
        "seconds",
        "message",
    }
    runs = {r["step"]: (r["status"], r["message"]) for r in lake.read_rows("runs")}
    assert runs == {
        "ingest": ("failed", "ValueError: planted failure"),
        "features": ("not_run", "not run: step ingest failed"),
        "insights": ("not_run", "not run: step ingest failed"),
    }
    # The failed run released its lock: the next run of the date starts.
    assert active_holders(lake.read_rows("run_locks"), "daily", DAY, dt.datetime.now(dt.UTC).replace(tzinfo=None)) == []


def test_a_jvm_error_is_recorded_by_its_root_cause(spark, tmp_path):
    from py4j.protocol import Py4JJavaError

    from segengine.pipeline.daily import _error_line

    missing = tmp_path / "missing.bin"
    with pytest.raises(Py4JJavaError) as err:
        spark.sparkContext._jvm.java.io.FileInputStream(str(missing))
    # py4j's own first line names the call, not the cause.
    assert str(err.value).startswith("An error occurred while calling")
    assert _error_line(err.value) == f"java.io.FileNotFoundException: {missing} (No such file or directory)"
