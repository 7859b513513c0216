"""Exact stitching on a few hand-written personas: transitive merges, guards, reruns."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from segengine.errors import ConfigError
from segengine.identity import IdentityError, build_identity_map, connected_components, stitch
from segengine.identity.build import check_settings

PERSONAS = "persona_id string, email string, phone string, cookie_id string"
EVENTS = "persona_id string, cookie_id string"


def _cfg(config, **kw):
    return config.identity.replace(**kw)


def _persons(result) -> dict[str, str]:
    rows = result.identity_map.where(F.col("id_type") == "persona_id").collect()
    return {r["id_value"]: r["person_id"] for r in rows}


def _run(spark, config, personas, events=None, **kw):
    p = spark.createDataFrame(personas, PERSONAS)
    e = spark.createDataFrame(events or [], EVENTS)
    return stitch(p, e, _cfg(config, **kw))


def test_a_b_by_email_and_b_c_by_phone_are_one_person(spark, config):
    result = _run(
        spark,
        config,
        [
            ("a", "Ann@Example.com ", None, None),
            ("b", "ann@example.com", "+49 151 1111111", None),
            ("c", None, "0151-1111111", None),
            ("d", "dan@example.com", None, None),
        ],
    )
    assert _persons(result) == {"a": "a", "b": "a", "c": "a", "d": "d"}
    rows = {(r["id_type"], r["id_value"]): r for r in result.identity_map.collect()}
    assert rows[("email", "ann@example.com")]["person_id"] == "a"
    assert rows[("email", "ann@example.com")]["persona_count"] == 2
    assert rows[("email", "ann@example.com")]["rule"] == ["persona_email"]
    assert rows[("phone", "+491511111111")]["person_id"] == "a"
    assert rows[("persona_id", "b")]["linked_by"] == ["email:ann@example.com", "phone:+491511111111"]
    assert rows[("persona_id", "b")]["rule"] == ["persona_email", "persona_phone"]
    assert rows[("persona_id", "c")]["status"] == "merged" and rows[("persona_id", "c")]["component_size"] == 3
    assert rows[("persona_id", "d")]["status"] == "single" and rows[("persona_id", "d")]["linked_by"] == []
    assert result.changes[-1] == 0
    result.release()


def test_a_cookie_seen_on_a_login_links_the_visitor_to_the_persona(spark, config):
    personas = [("p1", "x@example.com", None, "ck-1"), ("v9", None, None, "ck-2")]
    events = [("p1", "ck-2"), (None, "ck-2"), ("ghost", "ck-1")]
    result = _run(spark, config, personas, events)
    assert _persons(result) == {"p1": "p1", "v9": "p1"}
    ck2 = result.identity_map.where("id_value = 'ck-2'").first()
    assert ck2["rule"] == ["event_cookie", "persona_cookie"] and ck2["persona_count"] == 2
    result.release()
    # With event links off, the visitor stays alone.
    off = _run(spark, config, personas, events, event_links=False)
    assert _persons(off) == {"p1": "p1", "v9": "v9"}
    off.release()


def test_a_generic_email_shared_by_many_does_not_merge_them_and_is_reported(spark, config):
    personas = [(f"p{i}", "  Info@Shop.example ", None, None) for i in range(1, 5)]
    personas.append(("p5", None, "+491512222222", None))
    personas.append(("p6", None, "+491512222222", None))
    result = _run(spark, config, personas, max_personas_per_identifier=3)
    assert _persons(result) == {"p1": "p1", "p2": "p2", "p3": "p3", "p4": "p4", "p5": "p5", "p6": "p5"}
    rejected = [r.asDict() for r in result.rejected.collect()]
    assert rejected == [
        {
            "id_type": "email",
            "id_value": "info@shop.example",
            "reason": "shared_identifier",
            "persona_count": 4,
            "personas": ["p1", "p2", "p3", "p4"],
        }
    ]
    assert result.identity_map.where("id_value = 'info@shop.example'").count() == 0
    result.release()


def test_a_component_above_the_max_size_is_not_merged_and_is_reported(spark, config):
    # A chain p1-p2-p3-p4 by phones (each phone on two personas), and a pair q1-q2.
    personas = [
        ("p1", None, "+4915100000001", None),
        ("p2", "two@example.com", "+4915100000001", None),
        ("p3", "two@example.com", None, "ck-3"),
        ("p4", None, None, "ck-3"),
        ("q1", "q@example.com", None, None),
        ("q2", "q@example.com", None, None),
    ]
    result = _run(spark, config, personas, max_component_size=3)
    assert _persons(result) == {"p1": "p1", "p2": "p2", "p3": "p3", "p4": "p4", "q1": "q1", "q2": "q1"}
    statuses = {r["id_value"]: r["status"] for r in result.identity_map.where("id_type = 'persona_id'").collect()}
    assert statuses == {
        "p1": "component_too_large",
        "p2": "component_too_large",
        "p3": "component_too_large",
        "p4": "component_too_large",
        "q1": "merged",
        "q2": "merged",
    }
    # Its shared identifiers map to their smallest persona.
    assert result.identity_map.where("id_value = 'ck-3'").first()["person_id"] == "p3"
    rejected = [r.asDict() for r in result.rejected.collect()]
    assert rejected == [
        {
            "id_type": "component",
            "id_value": "p1",
            "reason": "component_too_large",
            "persona_count": 4,
            "personas": ["p1", "p2", "p3", "p4"],
        }
    ]
    result.release()


def test_values_that_do_not_normalise_are_reported(spark, config):
    result = _run(spark, config, [("p1", "nobody", "123", None), ("p2", None, " ", None)])
    rejected = sorted((r["id_type"], r["id_value"], r["reason"], r["personas"]) for r in result.rejected.collect())
    assert rejected == [("email", "nobody", "invalid_email", ["p1"]), ("phone", "123", "invalid_phone", ["p1"])]
    assert _persons(result) == {"p1": "p1", "p2": "p2"}
    result.release()


def test_a_long_chain_converges_to_its_smallest_persona(spark, config):
    n = 12
    links = spark.createDataFrame(
        [(f"p{i:02d}", f"k{i}") for i in range(n)] + [(f"p{i + 1:02d}", f"k{i}") for i in range(n - 1)],
        "persona_id string, key string",
    )
    labels, changes = connected_components(links, max_iterations=20, checkpoint_every=2)
    assert {r["label"] for r in labels.collect()} == {"p00"}
    assert changes[-1] == 0 and len(changes) < n
    labels.unpersist()
    with pytest.raises(IdentityError, match="did not converge in identity.max_iterations=1 rounds"):
        connected_components(links, max_iterations=1, checkpoint_every=0)


def test_the_build_writes_the_date_and_a_rerun_replaces_it(spark, lake, config):
    personas = spark.createDataFrame(
        [
            ("a", "ann@example.com", None, None, "2025-01-01 10:00:00"),
            ("b", "ANN@example.com", None, "ck-b", "2025-01-02 10:00:00"),
            ("c", None, None, "ck-c", "2025-03-01 10:00:00"),  # created after the first date
        ],
        "persona_id string, email string, phone string, cookie_id string, created_at string",
    ).withColumn("created_at", F.to_timestamp("created_at"))
    lake.write(personas, "personas", mode="overwrite")
    events = spark.createDataFrame(
        [("e1", "a", "ck-c", "2025-03-02 09:00:00", "login")],
        "event_id string, persona_id string, cookie_id string, event_ts string, event_type string",
    ).withColumn("event_ts", F.to_timestamp("event_ts"))
    lake.write(events.withColumn("event_date", F.to_date("event_ts")), "events", mode="overwrite")

    first = build_identity_map(spark, lake, config, dt.date(2025, 1, 31))
    again = build_identity_map(spark, lake, config, dt.date(2025, 1, 31))
    later = build_identity_map(spark, lake, config, dt.date(2025, 3, 31))

    assert first["personas"] == 2 and first["persons"] == 1 and first["component_sizes"] == {2: 1}
    assert {k: again[k] for k in ("personas", "persons", "component_sizes", "identifiers")} == {
        k: first[k] for k in ("personas", "persons", "component_sizes", "identifiers")
    }
    assert later["personas"] == 3 and later["persons"] == 1 and later["component_sizes"] == {3: 1}
    table = lake.read("identity_map")
    per_date = {
        str(r["snapshot_date"]): r["n"]
        for r in table.groupBy("snapshot_date").count().withColumnRenamed("count", "n").collect()
    }
    # 2025-01-31: personas a, b, the email and ck-b; 2025-03-31: also c and ck-c.
    assert per_date == {"2025-01-31": 4, "2025-03-31": 6}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("default_country_code", "4x", "identity.default_country_code: expected a calling code of 1-3 digits"),
        ("max_component_size", 1, "identity.max_component_size: expected at least 2, got 1"),
        ("max_personas_per_identifier", 0, "identity.max_personas_per_identifier: expected at least 1"),
    ],
)
def test_a_setting_that_cannot_work_is_refused_by_name(config, key, value, message):
    with pytest.raises(ConfigError, match=message):
        check_settings(_cfg(config, **{key: value}))
