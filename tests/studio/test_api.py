"""The studio API over the test session and a hand-written feature partition (see conftest)."""

from __future__ import annotations

import datetime as dt

from segengine.studio import FeatureCache, StudioSettings, create_app

from .conftest import D1, D2, HIGH_FIT, as_user, write_features

GB_HIGH_FIT = {
    "name": "GB high fit",
    "where": {"all": [{"attr": "fit_score", "op": ">=", "value": 70}, {"attr": "country", "op": "=", "value": "GB"}]},
}
FR_OR_LOW_SPEND = {
    "name": "FR or low spend",
    "where": {"any": [{"attr": "country", "op": "=", "value": "FR"}, {"attr": "monetary", "op": "<", "value": 50}]},
}


def test_counts_per_persona_type_are_exact(client):
    high = client.post("/api/segments/count", json={"document": HIGH_FIT})
    assert high.status_code == 200, high.text
    assert high.json() == {
        "name": "High fit",
        "snapshot_date": "2025-06-30",
        "by_persona_type": {"customer": 2, "prospect": 1},
        "total": 3,
    }
    gb = client.post("/api/segments/count", json={"document": GB_HIGH_FIT}).json()
    assert (gb["by_persona_type"], gb["total"]) == ({"customer": 1}, 1)
    either = client.post("/api/segments/count", json={"document": FR_OR_LOW_SPEND}).json()
    assert (either["by_persona_type"], either["total"]) == ({"customer": 2, "prospect": 1}, 3)
    everyone = client.post("/api/segments/count", json={"document": {"name": "All"}}).json()
    assert everyone["by_persona_type"] == {"customer": 3, "prospect": 1, "visitor": 1}


def test_preview_lists_the_first_members_by_id_with_chosen_columns(client):
    body = {"document": HIGH_FIT, "columns": ["fit_score", "country"], "limit": 2}
    preview = client.post("/api/segments/preview", json=body)
    assert preview.status_code == 200, preview.text
    assert preview.json() == {
        "name": "High fit",
        "snapshot_date": "2025-06-30",
        "columns": ["persona_id", "persona_type", "fit_score", "country"],
        "rows": [
            {"persona_id": "a", "persona_type": "customer", "fit_score": 80, "country": "GB"},
            {"persona_id": "b", "persona_type": "prospect", "fit_score": 75, "country": "FR"},
        ],
    }
    unknown = client.post("/api/segments/preview", json={**body, "columns": ["country", "fitscore"]})
    assert unknown.status_code == 422
    assert unknown.json()["problems"] == ["columns[1]: unknown attribute 'fitscore' (did you mean fit_score?)"]


def test_counts_read_the_cached_partition(spark, lake, client, capsys):
    cache: FeatureCache = client.app.state.studio.cache
    client.post("/api/segments/count", json={"document": HIGH_FIT})
    snap = cache.snapshot()
    assert snap.snapshot_date == D1 and snap.rows == 5 and snap.frame.is_cached
    spark.sql(f"SELECT persona_id FROM {snap.views.features} WHERE fit_score >= 70").explain()
    assert "InMemoryTableScan" in capsys.readouterr().out


def test_explain_counts_the_empty_values_on_the_cached_partition(client):
    explained = client.post("/api/segments/explain", json={"document": HIGH_FIT})
    assert explained.status_code == 200, explained.text
    assert (
        "where (fit_score >= 70): personas with no fit_score are not included (1 persona on 2025-06-30)"
        in explained.json()["explanation"]
    )


def test_a_date_without_features_is_a_404_naming_the_latest(client):
    response = client.post("/api/segments/count", json={"document": HIGH_FIT, "date": "2025-07-31"})
    assert response.status_code == 404
    assert response.json()["detail"].startswith("no customer_features partition for 2025-07-31 (latest is 2025-06-30)")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_newer_partition_is_cached_after_the_check_interval_and_the_old_one_dropped(spark, lake, config, features):
    from fastapi.testclient import TestClient

    clock = Clock()
    cache = FeatureCache(spark, lake, check_seconds=60, clock=clock)
    app = create_app(spark, lake, config, StudioSettings(default_user="tester"), cache=cache)
    with TestClient(app) as client:

        def count() -> tuple[str, int]:
            answer = client.post("/api/segments/count", json={"document": HIGH_FIT}).json()
            return answer["snapshot_date"], answer["total"]

        assert count() == ("2025-06-30", 3)
        first = cache.snapshot()
        write_features(spark, lake, D2)
        clock.now = 59.0
        assert count() == ("2025-06-30", 3)  # not looked for yet
        clock.now = 60.0
        assert count() == ("2025-07-31", 4)  # c's fit score rose to 95
        assert cache.cached_dates() == [D2]
        assert not first.frame.is_cached
        assert spark.catalog.tableExists(cache.snapshot().views.features)
        assert not spark.catalog.tableExists(first.views.features)
        # An older date on request is cached beside the latest.
        older = client.post("/api/segments/count", json={"document": HIGH_FIT, "date": "2025-06-30"}).json()
        assert (older["snapshot_date"], older["total"]) == ("2025-06-30", 3)
        assert cache.cached_dates() == [D1, D2]
    assert cache.cached_dates() == []  # unpersisted when the app stops


def test_a_private_audience_is_invisible_to_another_user(client):
    body = {"document": GB_HIGH_FIT, "name": "Ann's GB", "kind": "static", "visibility": "private"}
    created = client.post("/api/audiences", json=body, headers=as_user("ann"))
    assert created.status_code == 201, created.text
    aud = created.json()
    assert (aud["owner"], aud["visibility"], aud["kind"], aud["size"], aud["refreshed_for"]) == (
        "ann",
        "private",
        "static",
        1,
        "2025-06-30",
    )
    shared = client.post("/api/audiences", json={"document": HIGH_FIT}, headers=as_user("ann"))
    assert shared.status_code == 201, shared.text
    assert (shared.json()["kind"], shared.json()["size"]) == ("dynamic", 3)

    def names(user: str) -> list[str]:
        return sorted(a["name"] for a in client.get("/api/audiences", headers=as_user(user)).json())

    assert names("ann") == ["Ann's GB", "High fit"]
    assert names("bob") == ["High fit"]
    for path in ("/api/audiences/Ann's GB", f"/api/audiences/{aud['audience_id']}", "/api/audiences/Ann's GB/members"):
        hidden = client.get(path, headers=as_user("bob"))
        assert hidden.status_code == 404, path
        assert hidden.json()["detail"].startswith("no audience ")
        assert "ann" not in hidden.json()["detail"]  # not even the owner's name
    # Told apart from an audience that does not exist? No: the same answer.
    assert client.get("/api/audiences/Ann's GB", headers=as_user("bob")).json()["detail"] == 'no audience "Ann\'s GB"'
    assert client.get("/api/audiences/Bob's GB", headers=as_user("bob")).json()["detail"] == 'no audience "Bob\'s GB"'
    members = client.get("/api/audiences/Ann's GB/members", headers=as_user("ann")).json()
    assert members == {"audience": "Ann's GB", "members": [{"persona_id": "a", "since": "2025-06-30"}]}
    # The 360 of a member lists the audiences the asking user may see, only.
    of_ann = {a["name"] for a in client.get("/api/profiles/a", headers=as_user("ann")).json()["audiences"]}
    of_bob = {a["name"] for a in client.get("/api/profiles/a", headers=as_user("bob")).json()["audiences"]}
    assert (of_ann, of_bob) == ({"Ann's GB", "High fit"}, {"High fit"})
    # Nor can bob build on it.
    nested = {"name": "n", "where": {"in_segment": "Ann's GB"}}
    refused = client.post("/api/segments/count", json={"document": nested}, headers=as_user("bob"))
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert detail.startswith("segment 'n': where.in_segment: unknown segment \"Ann's GB\""), detail
    assert "private" not in detail and "ann" not in detail.replace("Ann's GB", "").lower()
    inside = client.post("/api/segments/count", json={"document": nested}, headers=as_user("ann")).json()
    assert inside["total"] == 1


def test_saving_an_audience_evaluates_on_the_warm_cache(client):
    from segengine.rules import evaluate

    before = {key: id(frame) for key, frame in evaluate._CACHED.items()}
    saved = client.post("/api/audiences", json={"document": FR_OR_LOW_SPEND, "kind": "static"})
    assert saved.status_code == 201, saved.text
    assert saved.json()["size"] == 3
    after = {key: id(frame) for key, frame in evaluate._CACHED.items()}
    assert after == before  # no second cached copy of the partition


def test_an_audience_name_taken_is_a_409(client):
    assert client.post("/api/audiences", json={"document": HIGH_FIT}).status_code == 201
    again = client.post("/api/audiences", json={"document": HIGH_FIT})
    assert again.status_code == 409, again.text
    assert "High fit" in again.json()["detail"]


def test_the_profile_is_the_libraries_customer_360(client, spark, lake, config):
    from segengine.insights.profile import customer_profile

    response = client.get("/api/profiles/e")
    assert response.status_code == 200
    profile = response.json()
    assert profile == customer_profile(spark, lake, config, "e")
    assert (profile["snapshot_date"], profile["features"]["fit_score"], profile["features"]["plan"]) == (
        "2025-06-30",
        90,
        "pro",
    )
    missing = client.get("/api/profiles/zz")
    assert missing.status_code == 404
    assert missing.json()["detail"].startswith("persona 'zz' not found")


def test_runs_are_the_latest_rows_newest_first(client, lake):
    from segengine.pipeline.daily import _runs_schema

    rows = [
        (f"r{i}", D1, step, "ok", 10 * i, 1.5, dt.datetime(2025, 7, 1, 2, i), None, "app-1")
        for i, step in enumerate(["features", "score_segments", "audiences"], start=1)
    ]
    lake.write_rows(rows, _runs_schema(), "runs")
    runs = client.get("/api/runs", params={"limit": 2}).json()
    assert [(r["run_id"], r["step"], r["rows"]) for r in runs] == [
        ("r3", "audiences", 30),
        ("r2", "score_segments", 20),
    ]
    assert client.get("/api/runs", params={"limit": 501}).status_code == 422


def test_every_tab_renders(client):
    client.post("/api/audiences", json={"document": GB_HIGH_FIT, "kind": "static"})
    segments = client.get("/segments")
    assert segments.status_code == 200 and "Segment builder" in segments.text
    assert '"name": "fit_score"' in segments.text  # the catalog, for the builder
    listing = client.get("/audiences")
    assert "GB high fit" in listing.text
    one = client.get("/audiences", params={"name": "GB high fit"})
    assert '<a href="/profiles?persona_id=a">a</a>' in one.text
    assert "&#34;op&#34;: &#34;&gt;=&#34;" in one.text  # the definition as readable (escaped) JSON
    assert client.get("/audiences", params={"name": "nope"}).status_code == 404
    profile = client.get("/profiles", params={"persona_id": "a"})
    assert "Persona a as of 2025-06-30" in profile.text
    assert client.get("/profiles", params={"persona_id": "zz"}).status_code == 404
    assert "Latest pipeline runs" in client.get("/runs").text


def test_the_command_serves_the_app_over_its_session(spark, lake, config, features, monkeypatch):
    import uvicorn
    from click.testing import CliRunner
    from fastapi.testclient import TestClient

    import segengine.session
    from segengine.cli import cli

    served = {}
    monkeypatch.setattr(segengine.session, "build_spark", lambda *a, **k: spark)
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, *a, **k: served.update(config=self.config))
    base = ["--env", "local", "--conf", f"warehouse={config.warehouse}", "--conf", f"delta.backend={lake.backend.name}"]
    args = ["studio", "--port", "8799", "--user-header", "X-Forwarded-User", "--user", "ann"]
    result = CliRunner().invoke(cli, [*base, *args])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("segengine studio on http://127.0.0.1:8799/")
    assert (served["config"].host, served["config"].port) == ("127.0.0.1", 8799)
    with TestClient(served["config"].app, base_url="http://127.0.0.1:8799") as client:
        count = client.post("/api/segments/count", json={"document": HIGH_FIT}).json()
        assert (count["snapshot_date"], count["total"]) == ("2025-06-30", 3)
        assert "Signed in as <strong>ann</strong>" in client.get("/runs").text
        assert "Signed in as <strong>bob</strong>" in client.get("/runs", headers={"X-Forwarded-User": "bob"}).text
        assert client.get("/runs", headers={"Host": "evil.example.net"}).status_code == 400
