"""Destinations: webhook syncs against a failing local server, files drops with manifests, Delta."""

from __future__ import annotations

import csv
import hashlib
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from segengine.audiences.destinations import (
    attach,
    create_destination,
    dead_letters,
    delta_paths,
    get_destination,
    sync_destinations,
    sync_log,
    versions_to_keep,
    watermark,
)
from segengine.audiences.membership import apply_membership
from segengine.audiences.registry import ensure_tables, register_audience
from segengine.errors import AudienceError
from segengine.pipeline.daily import daily_steps

from .conftest import D1, D2

CLIENT_TIMEOUT = 0.4


class FlakyEndpoint:
    """A webhook endpoint on 127.0.0.1 that fails on purpose, following a plan.

    Each request takes the next action of ``plan`` (then ``ok`` once the plan is used
    up): ``500``/``503`` answer that status without keeping the batch; ``drop`` closes
    the connection without an answer; ``slow`` keeps the batch, then answers after the
    client's timeout (so the client retries a batch that did arrive). Like any endpoint
    that honours idempotency keys, it applies a batch once per key: ``log`` is what it
    applied, ``attempts`` every request it got.
    """

    def __init__(self):
        self.plan: list[str] = []
        self.attempts: list[tuple[str, str]] = []  # (idempotency key, action)
        self.log: list[tuple[str, str, int, int]] = []  # (persona_id, change, from_version, to_version)
        self.keys: set[str] = set()
        self.lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the stdlib's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers["Idempotency-Key"]
                with endpoint.lock:
                    action = endpoint.plan.pop(0) if endpoint.plan else "ok"
                    endpoint.attempts.append((key, action))
                    if action in ("ok", "slow") and key not in endpoint.keys:
                        endpoint.keys.add(key)
                        endpoint.log.extend(
                            (c["persona_id"], c["change"], body["from_version"], body["to_version"])
                            for c in body["changes"]
                        )
                if action == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if action == "slow":
                    time.sleep(CLIENT_TIMEOUT * 2)
                code = int(action) if action.isdigit() else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/audiences"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    server = FlakyEndpoint()
    yield server
    server.close()


def _members(spark, ids):
    return spark.createDataFrame([(p,) for p in ids], "persona_id string")


def _static(spark, lake, config, name, ids, visibility="shared"):
    """A static audience with its members (the registry row and one membership commit)."""
    ensure_tables(spark, lake)
    aud = register_audience(spark, lake, name, "ann", "static", "upload", {}, visibility)
    apply_membership(spark, lake, aud.audience_id, _members(spark, ids), D1)
    return aud.audience_id


def _replay(log):
    """Members after applying the endpoint's log in order, failing on an impossible change."""
    members: set[str] = set()
    for persona, change, _, _ in log:
        if change == "join":
            assert persona not in members, f"{persona} joined twice"
            members.add(persona)
        else:
            assert persona in members, f"{persona} left without having joined"
            members.remove(persona)
    return members


@pytest.mark.slow  # end to end through real membership commits (about 10-30 s each)
def test_webhook_sync_survives_a_failing_endpoint_with_every_change_once(spark, lake, config, endpoint):
    create_destination(
        spark,
        lake,
        "crm",
        "webhook",
        {
            "url": endpoint.url,
            "batch_size": 2,
            "max_retries": 2,
            "backoff_seconds": 0.01,
            "timeout_seconds": CLIENT_TIMEOUT,
        },
        "ann",
    )
    aid = _static(spark, lake, config, "vip", ["p1", "p2", "p3", "p4", "p5"])
    attach(spark, lake, "vip", "crm", "ann")
    v1 = lake.version("audience_members")

    # First sync: 3 batches (p1 p2 | p3 p4 | p5). Batch 0 meets a 500, then a slow answer
    # (kept by the endpoint, timed out by the client), then is acknowledged; batch 1 meets
    # a dropped connection.
    endpoint.plan = ["500", "slow", "ok", "drop"]
    first = sync_destinations(spark, lake)
    assert [(s["status"], s["adds"], s["batches_sent"]) for s in first["synced"]] == [("done", 5, 3)]
    assert watermark(lake, "crm", aid) == v1

    # p1 and p2 leave, p6..p8 join; the endpoint then fails every request of batch 1
    # (3 attempts): batch 0 arrives, batch 1 is dead-lettered, the watermark stays.
    apply_membership(spark, lake, aid, _members(spark, ["p3", "p4", "p5", "p6", "p7", "p8"]), D2)
    v2 = lake.version("audience_members")
    endpoint.plan = ["ok", "503", "503", "503"]
    second = sync_destinations(spark, lake)
    assert second["failed"] == ["vip"]
    assert [(s["status"], s["batches_sent"]) for s in second["synced"]] == [("failed", 1)]
    assert watermark(lake, "crm", aid) == v1
    letters = dead_letters(lake, "crm")
    assert [(d["batch"], d["error"][:8]) for d in letters] == [(1, "HTTP 503")]

    # While the endpoint is down the audience changes again; then the endpoint recovers.
    apply_membership(spark, lake, aid, _members(spark, ["p4", "p5", "p6", "p7", "p8", "p9"]), D2)
    v3 = lake.version("audience_members")
    third = sync_destinations(spark, lake)
    assert [(s["from_version"], s["to_version"], s["status"]) for s in third["synced"]] == [
        (v1, v2, "done"),
        (v2, v3, "done"),
    ]
    assert watermark(lake, "crm", aid) == v3

    # The endpoint's log: every change exactly once, in an order that replays.
    expected = Counter(
        [(p, "join", -1, v1) for p in ["p1", "p2", "p3", "p4", "p5"]]
        + [(p, "leave", v1, v2) for p in ["p1", "p2"]]
        + [(p, "join", v1, v2) for p in ["p6", "p7", "p8"]]
        + [("p3", "leave", v2, v3), ("p9", "join", v2, v3)]
    )
    print("endpoint log:", *endpoint.log, sep="\n  ")
    assert Counter(endpoint.log) == expected
    assert max(Counter(endpoint.log).values()) == 1
    assert _replay(endpoint.log) == {"p4", "p5", "p6", "p7", "p8", "p9"}
    # The failures did happen, and the slow batch did reach the endpoint twice.
    actions = Counter(a for _, a in endpoint.attempts)
    assert actions["500"] == 1 and actions["drop"] == 1 and actions["slow"] == 1 and actions["503"] == 3
    assert len({k for k, _ in endpoint.attempts}) < len(endpoint.attempts)
    # Nothing left to send: a rerun sends nothing.
    before = len(endpoint.attempts)
    assert sync_destinations(spark, lake)["synced"] == []
    assert len(endpoint.attempts) == before


@pytest.mark.slow  # end to end through real membership commits (about 10-30 s each)
def test_files_destination_writes_a_snapshot_then_adds_and_removes_with_a_manifest(spark, lake, config, tmp_path):
    drop = tmp_path / "drop"
    create_destination(spark, lake, "sftp", "files", {"path": str(drop), "columns": ["persona_id", "since"]}, "ann")
    aid = _static(spark, lake, config, "vip", ["p1", "p2", "p3"])
    attach(spark, lake, "vip", "sftp", "ann")
    v1 = lake.version("audience_members")
    sync_destinations(spark, lake)
    apply_membership(spark, lake, aid, _members(spark, ["p2", "p3", "p4"]), D2)
    v2 = lake.version("audience_members")
    sync_destinations(spark, lake)

    first = json.loads((drop / aid / f"v-1-{v1}" / "manifest.json").read_text())
    assert (first["kind"], first["from_version"], first["to_version"]) == ("snapshot", None, v1)
    assert [(f["name"], f["rows"]) for f in first["files"]] == [("snapshot.csv", 3)]
    with open(drop / aid / f"v-1-{v1}" / "snapshot.csv") as fh:
        assert list(csv.reader(fh)) == [["persona_id", "since"], ["p1", str(D1)], ["p2", str(D1)], ["p3", str(D1)]]

    diff_dir = drop / aid / f"v{v1}-{v2}"
    second = json.loads((diff_dir / "manifest.json").read_text())
    assert (second["kind"], second["from_version"], second["to_version"]) == ("diff", v1, v2)
    assert [(f["name"], f["rows"]) for f in second["files"]] == [("adds.csv", 1), ("removes.csv", 1)]
    for f in second["files"]:
        assert f["sha256"] == hashlib.sha256((diff_dir / f["name"]).read_bytes()).hexdigest()
    with open(diff_dir / "adds.csv") as fh:
        assert list(csv.reader(fh)) == [["persona_id", "since"], ["p4", str(D2)]]
    with open(diff_dir / "removes.csv") as fh:
        assert list(csv.reader(fh)) == [["persona_id"], ["p1"]]
    assert [r["status"] for r in sync_log(lake, "sftp", aid)] == ["pending", "done", "pending", "done"]


@pytest.mark.slow  # end to end through real membership commits (about 10-30 s each)
def test_delta_destination_keeps_current_members_and_every_change(spark, lake, config):
    create_destination(spark, lake, "lakehouse", "delta", {}, "ann")
    aid = _static(spark, lake, config, "vip", ["p1", "p2"])
    attach(spark, lake, "vip", "lakehouse", "ann")
    sync_destinations(spark, lake)
    apply_membership(spark, lake, aid, _members(spark, ["p2", "p3"]), D2)
    sync_destinations(spark, lake)
    members_uri, changes_uri = delta_paths(lake, get_destination(lake, "lakehouse"))
    assert sorted(r["persona_id"] for r in lake.read(members_uri).collect()) == ["p2", "p3"]
    changes = sorted((r["persona_id"], r["change"]) for r in lake.read(changes_uri).collect())
    assert changes == [("p1", "join"), ("p1", "leave"), ("p2", "join"), ("p3", "join")]


def test_private_audience_cannot_be_synced_and_settings_are_checked(spark, lake, config):
    create_destination(spark, lake, "crm", "webhook", {"url": "http://127.0.0.1:9/x"}, "ann")
    _static(spark, lake, config, "mine", ["p1"], visibility="private")
    with pytest.raises(AudienceError, match="private"):
        attach(spark, lake, "mine", "crm", "ann")
    with pytest.raises(AudienceError, match="unknown webhook setting"):
        create_destination(spark, lake, "x", "webhook", {"url": "http://h", "batchsize": 3}, "ann")
    with pytest.raises(AudienceError, match="needs path"):
        create_destination(spark, lake, "y", "files", {}, "ann")
    with pytest.raises(AudienceError, match="did you mean crm"):
        attach(spark, lake, "mine", "crn", "ann")
    # With a destination registered, the daily pipeline syncs right after the refresh.
    names = [s.name for s in daily_steps(config, lake=lake)]
    assert names[names.index("audiences") + 1] == "sync_destinations"
    assert "sync_destinations" not in [s.name for s in daily_steps(config)]


def _vacuumed_after_a_change(spark, lake, keep: bool):
    """vip synced once to a Delta destination, then changed, then VACUUM at 0 hours (forced)."""
    from segengine.lake.maintenance import maintain

    create_destination(spark, lake, "lakehouse", "delta", {}, "ann")
    aid = _static(spark, lake, None, "vip", ["p1", "p2"])
    assert versions_to_keep(spark, lake) == {}  # not attached yet
    attach(spark, lake, "vip", "lakehouse", "ann")
    sync_destinations(spark, lake)
    synced_at = watermark(lake, "lakehouse", aid)
    apply_membership(spark, lake, aid, _members(spark, ["p2", "p3"]), D2)
    keep = versions_to_keep(spark, lake) if keep else None
    (outcome,) = maintain(lake, tables=["audience_members"], retention_hours=0, force=True, keep_versions=keep)
    return synced_at, keep, outcome


@pytest.mark.slow  # end to end through real membership commits and a VACUUM
def test_maintenance_keeps_the_version_an_attached_audience_was_last_synced_at(spark, lake):
    synced_at, keep, outcome = _vacuumed_after_a_change(spark, lake, keep=True)
    assert keep == {"audience_members": synced_at}
    assert outcome.note == f"retention 1 h instead of 0 h: a destination still syncs from version {synced_at}"
    result = sync_destinations(spark, lake)
    assert result["failed"] == [] and [r["status"] for r in result["synced"]] == ["done"]
    _, changes_uri = delta_paths(lake, get_destination(lake, "lakehouse"))
    changes = sorted((r["persona_id"], r["change"]) for r in lake.read(changes_uri).collect())
    assert changes == [("p1", "join"), ("p1", "leave"), ("p2", "join"), ("p3", "join")]


@pytest.mark.slow  # end to end through real membership commits and a VACUUM
def test_a_sync_from_a_vacuumed_version_fails_with_a_clear_message(spark, lake):
    synced_at, _, outcome = _vacuumed_after_a_change(spark, lake, keep=False)
    assert outcome.vacuum.files_removed > 0 and outcome.note == ""
    result = sync_destinations(spark, lake)
    assert result["failed"] == ["vip"]
    message = result["synced"][-1]["message"]
    assert message.startswith(
        f"SegengineError: destination lakehouse: audience 'vip' was last synced at version {synced_at} of "
        "audience_members, which is no longer readable"
    ), message
