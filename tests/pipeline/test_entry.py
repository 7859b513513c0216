"""spark-submit jobs: bad dates and a missing warehouse are one line and exit 2, before any session."""

from __future__ import annotations

import pytest

from segengine.pipeline.entry import job_main


def _never(ctx):  # pragma: no cover - the job must not start
    raise AssertionError("the job ran")


def test_a_job_on_a_missing_warehouse_is_refused_and_creates_nothing(tmp_path, monkeypatch, capsys):
    import segengine.session

    monkeypatch.setattr(segengine.session, "build_spark", lambda *a, **k: pytest.fail("a session was built"))
    missing = tmp_path / "no" / "warehouse"

    code = job_main("compute_features", _never, argv=["--date", "2025-06-30", "--conf", f"warehouse={missing}"])

    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"compute_features: error: warehouse {missing} does not exist (give the right one with --conf "
        "warehouse=PATH; `segengine ingest` or `segengine demo` create a new one)"
    ]
    assert not (tmp_path / "no").exists()


def test_a_job_with_a_bad_date_stops_at_the_argument(capsys):
    with pytest.raises(SystemExit) as exit_:
        job_main("score", _never, argv=["--date", "2025-02-30"])
    assert exit_.value.code == 2
    assert "argument --date: expected a date YYYY-MM-DD, got '2025-02-30' (day is out of range for month)" in (
        capsys.readouterr().err
    )
