"""The JVM (delta-spark) backend, tested as far as possible without Delta's jars."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from segengine.errors import EnvironmentProblem
from segengine.lake import Lake, choose_backend
from segengine.lake.jvm import merge_condition, quote_identifier, replace_where_clause, sql_literal, writer_options


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


def test_auto_picks_embedded_without_jars(spark, config):
    from segengine.lake.embedded import EmbeddedBackend

    cfg = dataclasses.replace(config, delta=dataclasses.replace(config.delta, backend="auto"))
    assert isinstance(choose_backend(spark, cfg), EmbeddedBackend)


def test_jvm_backend_without_jars_says_how_to_get_them(spark, config):
    cfg = dataclasses.replace(config, delta=dataclasses.replace(config.delta, backend="jvm"))
    with pytest.raises(EnvironmentProblem, match=r"--packages io\.delta:delta-spark_4\.2_2\.13:4\.4\.1"):
        Lake.open(spark, cfg)


def test_auto_picks_jvm_when_jars_and_extension_present(spark, config, monkeypatch):
    from segengine import session
    from segengine.lake.jvm import JvmBackend

    monkeypatch.setattr(session, "delta_jars_available", lambda s: True)
    monkeypatch.setattr(session, "delta_extension_enabled", lambda s: True)
    cfg = dataclasses.replace(config, delta=dataclasses.replace(config.delta, backend="auto"))
    assert isinstance(choose_backend(spark, cfg), JvmBackend)


def test_jvm_backend_requires_the_sql_extension(spark, config, monkeypatch):
    from segengine import session

    monkeypatch.setattr(session, "delta_jars_available", lambda s: True)
    cfg = dataclasses.replace(config, delta=dataclasses.replace(config.delta, backend="jvm"))
    with pytest.raises(EnvironmentProblem, match="DeltaSparkSessionExtension"):
        choose_backend(spark, cfg)


def test_delta_jars_are_not_on_this_classpath(spark):
    from segengine.session import delta_jars_available

    assert delta_jars_available(spark) is False


class _FakeWriter:
    def __init__(self, log):
        self.log = log

    def format(self, f):
        self.log.append(("format", f))
        return self

    def mode(self, m):
        self.log.append(("mode", m))
        return self

    def partitionBy(self, *cols):
        self.log.append(("partitionBy", cols))
        return self

    def option(self, k, v):
        self.log.append(("option", k, v))
        return self

    def save(self, path):
        self.log.append(("save", path))


class _FakeDF:
    def __init__(self, log):
        self.write = _FakeWriter(log)


def test_jvm_partition_overwrite_issues_replace_where(monkeypatch):
    from segengine.lake.jvm import JvmBackend

    log: list = []
    backend = JvmBackend(spark=None)
    monkeypatch.setattr(backend, "exists", lambda uri: True)
    monkeypatch.setattr(backend, "version", lambda uri: 7)
    v = backend.write(_FakeDF(log), "s3a://b/t", mode="overwrite", replace_partitions={"snapshot_date": "2025-01-01"})
    assert v == 7
    assert ("format", "delta") in log and ("mode", "overwrite") in log
    assert ("option", "replaceWhere", "`snapshot_date` = '2025-01-01'") in log
    assert log[-1] == ("save", "s3a://b/t")
    assert not any(e[0] == "partitionBy" for e in log)  # existing table keeps its partitioning
