"""The job adapters turn a job's arguments into one domain call (no Spark: the calls are recorded)."""

from __future__ import annotations

import argparse
import datetime as dt

from segengine.pipeline import jobs
from segengine.pipeline.entry import JobContext, base_parser

D = dt.date(2025, 6, 30)


def _ctx(config, argv, add_args=None, needs_date=True):
    parser = base_parser("test", needs_date)
    if add_args:
        add_args(parser)
    args = parser.parse_args(argv)
    return JobContext(spark=None, config=config, lake=None, snapshot_date=args.date, args=args)  # type: ignore[arg-type]


def _record(monkeypatch, *names):
    calls = []
    for name in names:
        monkeypatch.setattr(jobs, name, lambda *a, _n=name, **k: calls.append((_n, a, k)) or {"ok": _n})
    return calls


def test_score_job_scores_only_the_model_asked_for(config, monkeypatch):
    calls = _record(monkeypatch, "score_segments", "score_clv")

    def with_model(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--model", default="all")

    assert jobs.run_score_job(_ctx(config, ["--date", "2025-06-30", "--model", "clv"], with_model)) == {
        "clv": {"ok": "score_clv"}
    }
    assert [c[0] for c in calls] == ["score_clv"]
    jobs.run_score_job(_ctx(config, ["--date", "2025-06-30"], with_model))
    assert [c[0] for c in calls] == ["score_clv", "score_segments", "score_clv"]
    assert calls[0][1] == (None, None, config, D)


def test_training_jobs_pass_force_promote(config, monkeypatch):
    from segengine.pipeline.entry import add_force_promote

    calls = _record(monkeypatch, "train_segments", "train_clv", "train_recommendations", "train_propensity")
    forced = _ctx(config, ["--date", "2025-06-30", "--force-promote"], add_force_promote)
    for run in (
        jobs.run_train_segments_job,
        jobs.run_train_clv_job,
        jobs.run_train_recommendations_job,
        jobs.run_train_propensity_job,
    ):
        run(forced)
    jobs.run_train_clv_job(_ctx(config, ["--date", "2025-06-30"], add_force_promote))
    assert [(n, k["force_promote"]) for n, _, k in calls] == [
        ("train_segments", True),
        ("train_clv", True),
        ("train_recommendations", True),
        ("train_propensity", True),
        ("train_clv", False),
    ]


def test_features_job_force_allows_a_date_before_the_first_data(config, monkeypatch):
    calls = _record(monkeypatch, "compute_features")

    def with_force(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--force", action="store_true")

    jobs.run_features_job(_ctx(config, ["--date", "2025-06-30", "--force"], with_force))
    jobs.run_features_job(_ctx(config, ["--date", "2025-06-30"], with_force))
    allowed = [c[1][2].features.allow_before_first_data for c in calls]
    assert allowed == [True, config.features.allow_before_first_data]


def test_lookalike_job_reads_its_options(config, monkeypatch):
    calls = _record(monkeypatch, "expand_audience")
    argv = ["--date", "2025-06-30", "--seed", "vip", "--size", "5", "--by", "frequency, ,monetary", "--name", "x"]
    jobs.run_lookalike_job(_ctx(config, argv, jobs.add_lookalike_args))
    ((_, args, kwargs),) = calls
    assert args[3:] == ("vip", 5, ["frequency", "monetary"], D)
    assert kwargs == {"name": "x", "owner": "segengine"}


def test_insights_job_builds_the_tables_then_writes_the_report_where_out_says(config, monkeypatch):
    calls = _record(monkeypatch, "build_insights", "render_report")

    def with_out(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--out", default=None)

    summary = jobs.run_insights_job(_ctx(config, ["--date", "2025-06-30", "--out", "r.html"], with_out))
    assert summary == {"ok": "build_insights", "report": {"ok": "render_report"}}
    assert calls == [
        ("build_insights", (None, None, config, D), {}),
        ("render_report", (None, None, config, D, "r.html"), {}),
    ]


def test_refresh_job_passes_only_and_allow_large_change(config, monkeypatch):
    calls = _record(monkeypatch, "refresh_all")

    def with_refresh_args(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--audience", action="append", default=[])
        parser.add_argument("--allow-large-change", action="store_true")

    argv = ["--date", "2025-06-30", "--audience", "vip", "--allow-large-change"]
    jobs.run_refresh_job(_ctx(config, argv, with_refresh_args))
    jobs.run_refresh_job(_ctx(config, ["--date", "2025-06-30"], with_refresh_args))
    assert [(c[1], c[2]) for c in calls] == [
        ((None, None, config, D), {"only": ["vip"], "allow_large_change": True}),
        ((None, None, config, D), {"only": None, "allow_large_change": None}),
    ]
