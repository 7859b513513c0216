"""The notebook facade: dates as date or ISO string, the shared date error, and answers
equal to the library functions it delegates to.

Hand-written features for 2025-06-30 (and one row of 2025-05-31 that must never leak):

====  ========  =========  ========  =======
id    type      fit_score  monetary  country
====  ========  =========  ========  =======
a     customer  80         120.0     GB
b     prospect  75         null      FR
c     customer  10         40.0      GB
d     visitor   null       null      null
====  ========  =========  ========  =======
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
from chispa import assert_df_equality

from segengine.errors import FeatureSnapshotMissing, InvalidDate, UnknownAudience
from segengine.insights.profile import format_profile
from segengine.rules import count_by_persona_type, evaluate_segment
from segengine.workspace import SegmentCount, Workspace

SNAP = dt.date(2025, 6, 30)
FEATURES_DDL = "persona_id string, snapshot_date date, persona_type string, fit_score int, monetary double, country string, cookie_id string"
ROWS = [
    ("a", SNAP, "customer", 80, 120.0, "GB", None),
    ("b", SNAP, "prospect", 75, None, "FR", None),
    ("c", SNAP, "customer", 10, 40.0, "GB", None),
    ("d", SNAP, "visitor", None, None, None, None),
    ("a", dt.date(2025, 5, 31), "customer", 99, 999.0, "GB", None),
]
HIGH_FIT = {"name": "High fit", "where": {"attr": "fit_score", "op": ">=", "value": 70}}


@pytest.fixture
def ws(spark, config, lake):
    lake.write(spark.createDataFrame(ROWS, FEATURES_DDL), "customer_features", mode="overwrite")
    return Workspace(spark, config, lake)


def ids(df) -> list[str]:
    return sorted(r["persona_id"] for r in df.select("persona_id").collect())


def test_features_for_a_date_and_its_iso_string_are_the_same_dataframe(ws):
    by_date = ws.features(SNAP)
    assert_df_equality(by_date, ws.features("2025-06-30"), ignore_row_order=True)
    assert ids(by_date) == ["a", "b", "c", "d"]
    assert ws.snapshot_dates() == [dt.date(2025, 5, 31), SNAP]


def test_a_bad_date_string_is_the_shared_one_line_error(ws):
    for call in (
        lambda: ws.features("2025-02-30"),
        lambda: ws.segment(HIGH_FIT).members("2025-02-30"),
        lambda: ws.segment(HIGH_FIT).count("2025-02-30"),
        lambda: ws.refresh_features("2025-02-30"),
        lambda: ws.profile("a", "2025-02-30"),
    ):
        with pytest.raises(InvalidDate) as err:
            call()
        assert str(err.value) == "date: expected a date YYYY-MM-DD, got '2025-02-30' (day is out of range for month)"
        assert "\n" not in str(err.value)
    with pytest.raises(InvalidDate, match=r"^date: expected a date YYYY-MM-DD, got '30/06/2025'$"):
        ws.features("30/06/2025")


def test_a_date_without_features_names_the_latest_one(ws):
    with pytest.raises(
        FeatureSnapshotMissing, match=r"no customer_features partition for 2025-07-31 \(latest is 2025-06-30\)"
    ):
        ws.features("2025-07-31")
    with pytest.raises(FeatureSnapshotMissing):
        ws.segment(HIGH_FIT).count(dt.date(2025, 7, 31))


def test_segment_members_equal_the_rule_evaluation(spark, lake, ws):
    segment = ws.segment(HIGH_FIT)
    direct = evaluate_segment(spark, lake, HIGH_FIT, SNAP)
    assert_df_equality(segment.members("2025-06-30"), direct, ignore_row_order=True)
    assert_df_equality(segment.members(SNAP), direct, ignore_row_order=True)
    assert ids(direct) == ["a", "b"]
    count = segment.count("2025-06-30")
    assert count == SegmentCount("High fit", SNAP, {"customer": 1, "prospect": 1}, 2)
    assert {**count.by_persona_type, "total": count.total} == count_by_persona_type(direct)
    assert str(count) == "High fit on 2025-06-30: 2 (customer 1, prospect 1)"


def test_segment_from_yaml_file_resolves_segments_next_to_it(tmp_path, ws):
    (tmp_path / "gb.yaml").write_text("name: gb\nwhere:\n  attr: country\n  op: '='\n  value: GB\n")
    path = tmp_path / "gb_high_fit.yaml"
    path.write_text(
        "name: GB high fit\nwhere:\n  all:\n    - in_segment: gb\n    - attr: fit_score\n      op: '>='\n      value: 70\n"
    )
    assert ids(ws.segment(path).members("2025-06-30")) == ["a"]
    assert ids(ws.segment(str(path)).members(SNAP)) == ["a"]
    assert "fit_score" in ws.segment(str(path)).explain("2025-06-30")


def test_audiences_registry_and_members(ws):
    empty = ws.audiences()
    assert empty.count() == 0 and {"name", "kind", "size", "refreshed_for"} <= set(empty.columns)
    with pytest.raises(UnknownAudience):
        ws.audience("High fit")
    created = ws.create_audience(HIGH_FIT, date="2025-06-30", owner="analyst")
    registry = ws.audiences().collect()
    assert [(r["name"], r["kind"], r["source"], r["size"], r["refreshed_for"]) for r in registry] == [
        ("High fit", "dynamic", "rules", 2, SNAP)
    ]
    same = ws.audience("High fit")
    assert same.audience_id == created.audience_id
    assert ids(same.members()) == ["a", "b"]
    # A saved rules audience is usable by name in a segment.
    nested = {
        "name": "GB in high fit",
        "where": {"all": [{"in_segment": "High fit"}, {"attr": "country", "op": "=", "value": "GB"}]},
    }
    assert ids(ws.segment(nested).members(SNAP)) == ["a"]


def test_profile_accepts_a_date_or_its_string(ws):
    by_string = ws.profile("a", "2025-06-30")
    assert by_string.snapshot_date == SNAP
    assert by_string.data == ws.profile("a", SNAP).data
    assert by_string["features"]["fit_score"] == 80
    assert str(by_string) == format_profile(by_string.data)
    assert ws.profile("a").snapshot_date == SNAP  # default: the latest snapshot


def test_open_builds_the_configuration_from_keywords(monkeypatch, spark, tmp_path):
    import segengine.workspace as workspace

    monkeypatch.setattr(workspace, "build_spark", lambda config: spark)
    ws = Workspace.open(
        warehouse=tmp_path / "wh", conf=["segments.k=4"], spark__shuffle_partitions=3, delta__backend="embedded"
    )
    assert ws.config.warehouse_uri == str(tmp_path / "wh")
    assert (ws.config.segments.k, ws.config.spark.shuffle_partitions) == (4, 3)
    assert ws.spark is spark and ws.lake.backend.name == "embedded"


def test_import_segengine_starts_no_spark():
    code = (
        "import sys, segengine; assert 'pyspark' not in sys.modules; "
        "from segengine import Workspace; assert Workspace.__module__ == 'segengine.workspace'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
