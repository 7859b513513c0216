"""The JVM (delta-spark) backend: how it is chosen, and the plain functions it builds its calls with.

Its behaviour on real tables is the lake contract, tested on both backends in
``test_contract.py`` and ``test_interop.py``.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from segengine.errors import EnvironmentProblem, SchemaMismatch
from segengine.lake import Lake, choose_backend
from segengine.lake.jvm import (
    commit_id_of,
    commit_tag,
    conflict_name,
    merge_condition,
    quote_identifier,
    replace_where_clause,
    schema_problems,
    sql_literal,
    timestamp_text,
    writer_options,
)


def test_replace_where_quotes_identifiers_and_literals():
    assert replace_where_clause({"snapshot_date": dt.date(2025, 6, 30)}) == "`snapshot_date` = DATE '2025-06-30'"
    assert replace_where_clause({"audience_id": "o'b`x"}) == "`audience_id` = 'o\\'b`x'"


def test_quote_identifier_doubles_backticks():
    assert quote_identifier("we`ird") == "`we``ird`"


def test_sql_literal_types():
    assert sql_literal(None) == "NULL"
    assert sql_literal(True) == "true"
    assert sql_literal(3) == "3"
    assert sql_literal("a\\b'c") == "'a\\\\b\\'c'"
    assert sql_literal(dt.datetime(2025, 1, 2, 3, 4, 5)) == "TIMESTAMP '2025-01-02 03:04:05'"


def test_merge_condition_is_null_safe_on_every_key():
    assert merge_condition(["audience_id", "persona_id"]) == (
        "t.`audience_id` <=> s.`audience_id` AND t.`persona_id` <=> s.`persona_id`"
    )


def test_merge_condition_within_a_slice_adds_quoted_partition_values_on_the_target():
    assert merge_condition(["audience_id", "persona_id"], within={"audience_id": "a'1"}) == (
        "t.`audience_id` <=> s.`audience_id` AND t.`persona_id` <=> s.`persona_id` AND t.`audience_id` = 'a\\'1'"
    )
    assert merge_condition(["k"], within={"d": [dt.date(2025, 1, 1), dt.date(2025, 1, 2)]}).endswith(
        "AND t.`d` IN (DATE '2025-01-01', DATE '2025-01-02')"
    )


def test_writer_options():
    assert writer_options("append", None, False) == {}
    assert writer_options("append", None, True) == {"mergeSchema": "true"}
    assert writer_options("overwrite", {"snapshot_date": "2025-01-01"}, False) == {
        "replaceWhere": "`snapshot_date` = '2025-01-01'"
    }
    with pytest.raises(Exception, match="needs mode='overwrite'"):
        writer_options("append", {"snapshot_date": "2025-01-01"}, False)


def _with_backend(config, backend):
    return config.replace(delta=config.delta.replace(backend=backend))


def test_auto_picks_jvm_when_the_session_has_the_jars_and_extension(spark, config):
    from segengine.lake.jvm import JvmBackend
    from segengine.session import delta_extension_enabled, delta_jars_available

    # The test session is built as every local run is: jars/lib on spark.jars.
    assert delta_jars_available(spark) and delta_extension_enabled(spark)
    assert isinstance(choose_backend(spark, _with_backend(config, "auto")), JvmBackend)


def test_auto_picks_embedded_when_the_session_has_no_jars(spark, config, monkeypatch):
    from segengine import session
    from segengine.lake.embedded import EmbeddedBackend

    monkeypatch.setattr(session, "delta_jars_available", lambda s: False)
    assert isinstance(choose_backend(spark, _with_backend(config, "auto")), EmbeddedBackend)


def test_auto_picks_embedded_when_the_session_lacks_the_extension(spark, config, monkeypatch):
    from segengine import session
    from segengine.lake.embedded import EmbeddedBackend

    monkeypatch.setattr(session, "delta_extension_enabled", lambda s: False)
    assert isinstance(choose_backend(spark, _with_backend(config, "auto")), EmbeddedBackend)


def test_jvm_backend_without_jars_says_how_to_get_them(spark, config, monkeypatch):
    from segengine import session

    monkeypatch.setattr(session, "delta_jars_available", lambda s: False)
    with pytest.raises(EnvironmentProblem, match=r"--packages io\.delta:delta-spark_4\.2_2\.13:4\.4\.0"):
        Lake.open(spark, _with_backend(config, "jvm"))


def test_jvm_backend_requires_the_sql_extension(spark, config, monkeypatch):
    from segengine import session

    monkeypatch.setattr(session, "delta_extension_enabled", lambda s: False)
    with pytest.raises(EnvironmentProblem, match="DeltaSparkSessionExtension"):
        choose_backend(spark, _with_backend(config, "jvm"))


def test_spark_conf_puts_the_project_jars_on_spark_jars_with_the_extension(config, tmp_path, monkeypatch):
    from segengine import session

    monkeypatch.delenv(session.DELTA_JARS_ENV, raising=False)
    jars = session.delta_jars(config)
    assert jars and all(j.startswith(str(session.PROJECT_JARS)) for j in jars)
    assert any(j.rsplit("/", 1)[-1].startswith("delta-spark_4.2_2.13-4.4.0") for j in jars)
    for backend in ["auto", "jvm"]:
        conf = session.spark_conf(_with_backend(config, backend))
        assert conf["spark.jars"].split(",") == jars
        assert conf["spark.sql.extensions"] == session.DELTA_EXTENSION
        assert conf["spark.sql.catalog.spark_catalog"] == session.DELTA_CATALOG
    assert "spark.jars" not in session.spark_conf(_with_backend(config, "embedded"))
    # A folder without delta-spark counts as none: auto then gets neither jars nor extension.
    empty = config.replace(delta=config.delta.replace(backend="auto", jars_dir=str(tmp_path)))
    conf = session.spark_conf(empty)
    assert "spark.jars" not in conf and "spark.sql.extensions" not in conf


def test_commit_tag_is_json_the_history_finds_again():
    tag = commit_tag("c1", "REFRESH AUDIENCE", {"audience_id": "a1", "sizes": [1, 2], "n": 3})
    assert json.loads(tag) == {
        "operation_source": "segengine",
        "segengine.commit_id": "c1",
        "segengine.operation": "REFRESH AUDIENCE",
        "audience_id": "a1",
        "sizes": "[1, 2]",
        "n": 3,
    }
    assert commit_id_of(tag) == "c1"
    assert commit_id_of(None) is None and commit_id_of("not json") is None and commit_id_of('"x"') is None


def test_conflict_name_recognises_delta_concurrency_errors():
    class ConcurrentAppendException(Exception):
        pass

    class Converted(ConcurrentAppendException):
        pass

    class Py4JJavaError(Exception):
        pass

    assert conflict_name(Converted("boom")) == "ConcurrentAppendException"
    java = Py4JJavaError("An error occurred: io.delta.exceptions.ConcurrentDeleteReadException: [DELTA_...]")
    assert conflict_name(java) == "ConcurrentDeleteReadException"
    assert conflict_name(ValueError("Concurrent? no")) is None


def test_schema_problems_name_the_column():
    from pyspark.sql.types import DoubleType, IntegerType, LongType, StringType, StructField, StructType

    table = StructType([StructField("k", StringType()), StructField("v", DoubleType()), StructField("n", LongType())])
    with pytest.raises(SchemaMismatch, match=r"t: column\(s\) extra are not in the table schema"):
        schema_problems("t", table, StructType([*table.fields, StructField("extra", IntegerType())]), evolve=False)
    schema_problems("t", table, StructType([*table.fields, StructField("extra", IntegerType())]), evolve=True)
    with pytest.raises(SchemaMismatch, match="v: table has double, data has string"):
        schema_problems("t", table, StructType([StructField("k", StringType()), StructField("v", StringType())]), False)
    # Widening casts and missing nullable columns are fine.
    schema_problems("t", table, StructType([StructField("v", IntegerType()), StructField("n", IntegerType())]), False)


def test_timestamp_text_gives_aware_instants_in_utc():
    aware = dt.datetime(2025, 1, 2, 3, 4, 5, 6000, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert timestamp_text(aware) == "2025-01-02 01:04:05.006000Z"
    assert timestamp_text(dt.datetime(2025, 1, 2, 3, 4, 5)) == "2025-01-02 03:04:05"
    assert timestamp_text("2025-01-02") == "2025-01-02"


def test_a_delta_conflict_is_a_one_line_write_conflict_naming_the_table():
    from segengine.errors import WriteConflict
    from segengine.lake.jvm import JvmBackend

    class ConcurrentAppendException(Exception):
        pass

    exc = ConcurrentAppendException("[DELTA_CONCURRENT_APPEND] Files were added\nby a concurrent update.")
    failure = JvmBackend(spark=None)._failure("/w/gold/audience_members", exc, "REFRESH AUDIENCE")
    assert isinstance(failure, WriteConflict)
    assert str(failure) == (
        "/w/gold/audience_members: REFRESH AUDIENCE lost to a concurrent commit (ConcurrentAppendException); "
        "nothing was written, run it again"
    )
    other = ValueError("not a conflict")
    assert JvmBackend(spark=None)._failure("/w/t", other, "WRITE") is other


def test_a_delete_that_loses_a_race_runs_again_then_gives_up(monkeypatch):
    """A DELETE, like a MERGE, runs again on the new snapshot after a conflict."""
    from segengine.errors import WriteConflict
    from segengine.lake import jvm

    monkeypatch.setattr(jvm.time, "sleep", lambda _seconds: None)
    backend = jvm.JvmBackend(spark=None, commit_retries=2)
    monkeypatch.setattr(backend, "_delta_table", lambda uri: object())
    outcomes = iter([WriteConflict("lost"), 7])

    def tagged(uri, operation, metadata, run, settings=None):
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(backend, "_tagged", tagged)
    assert backend.delete_where("/w/t", "x = 1") == 7

    calls = []

    def always_lost(uri, operation, metadata, run, settings=None):
        calls.append(operation)
        raise WriteConflict("lost")

    monkeypatch.setattr(backend, "_tagged", always_lost)
    with pytest.raises(WriteConflict):
        backend.delete_where("/w/t", "x = 1")
    assert calls == ["DELETE"] * 3


def _spark_jobs(spark, run):
    """The result of ``run()`` and how many Spark jobs it started."""
    tracker = spark.sparkContext.statusTracker()
    group = "write-rows-probe"
    spark.sparkContext.setJobGroup(group, group)
    try:
        result = run()
    finally:
        spark.sparkContext.setJobGroup("", "")
    return result, len(tracker.getJobIdsForGroup(group))


def test_rows_on_the_jvm_backend_are_committed_without_a_spark_job_and_read_by_delta_spark(spark, config, tmp_path):
    lake = Lake(spark, config, choose_backend(spark, _with_backend(config, "jvm")))
    uri = str(tmp_path / "runs")
    schema = "run_id string, step string, seconds double"
    lake.write(spark.createDataFrame([("r0", "ingest", 1.0)], schema), uri)  # a delta-spark commit
    version, jobs = _spark_jobs(spark, lambda: lake.write_rows([("r1", "features", 2.5)], schema, uri))
    assert (version, jobs) == (1, 0)
    rows = spark.read.format("delta").load(uri).orderBy("run_id").collect()
    assert [tuple(r) for r in rows] == [("r0", "ingest", 1.0), ("r1", "features", 2.5)]
    assert lake.history(uri)[0]["segengine.operation"] == "WRITE"


def test_rows_for_a_table_with_a_check_constraint_go_through_delta_spark_which_enforces_it(spark, config, tmp_path):
    lake = Lake(spark, config, choose_backend(spark, _with_backend(config, "jvm")))
    uri = str(tmp_path / "amounts")
    schema = "order_id string, amount double"
    lake.write(spark.createDataFrame([("o1", 3.0)], schema), uri)
    spark.sql(f"ALTER TABLE delta.`{uri}` ADD CONSTRAINT positive CHECK (amount > 0)")
    _, jobs = _spark_jobs(spark, lambda: lake.write_rows([("o2", 4.0)], schema, uri))
    assert jobs > 0
    with pytest.raises(Exception, match="positive"):
        lake.write_rows([("o3", -1.0)], schema, uri)
    assert sorted(r.order_id for r in lake.read(uri).collect()) == ["o1", "o2"]
