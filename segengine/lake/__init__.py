"""The Delta Lake storage layer every job uses.

``Lake`` maps table names to URIs under the warehouse and delegates to one of two
backends with the same operations:

* :class:`~segengine.lake.jvm.JvmBackend`: delta-spark, when its jars are present;
* :class:`~segengine.lake.embedded.EmbeddedBackend`: delta-rs for the log, Spark for data.

Example::

    lake = Lake.open(spark, config)
    lake.write(df, "customer_features", mode="overwrite",
               replace_partitions={"snapshot_date": "2025-06-30"})
    lake.read("customer_features", partitions={"snapshot_date": "2025-06-30"})
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from segengine.errors import EnvironmentProblem, SegengineError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from segengine.config import Config


@dataclass(frozen=True)
class TableSpec:
    """A named table: where it lives and how it is partitioned."""

    name: str
    path: str
    layer: str
    partition_by: tuple[str, ...] = ()
    description: str = ""


# Every table segengine owns. Paths are relative to the warehouse; ``tables:`` in
# config relocates any of them.
TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in [
        TableSpec("personas", "bronze/personas", "bronze", (), "People, companies and anonymous visitors"),
        TableSpec("products", "bronze/products", "bronze", (), "Product catalogue"),
        TableSpec("order_lines", "bronze/order_lines", "bronze", (), "Order lines; refunds are negative quantities"),
        TableSpec("events", "bronze/events", "bronze", ("event_date",), "Web, app and email events"),
        TableSpec("support_tickets", "bronze/support_tickets", "bronze", (), "Support tickets (optional)"),
        TableSpec("survey_responses", "bronze/survey_responses", "bronze", (), "CSAT and NPS answers (optional)"),
        TableSpec("quarantine", "bronze/quarantine", "bronze", ("table_name",), "Rejected input rows with reason"),
        TableSpec("ingest_log", "bronze/ingest_log", "bronze", (), "Files already ingested (idempotence)"),
        TableSpec(
            "customer_features",
            "gold/customer_features",
            "gold",
            ("snapshot_date",),
            "One row per persona per snapshot",
        ),
        TableSpec(
            "customer_daily",
            "silver/customer_daily",
            "silver",
            ("day",),
            "Additive per persona per local day aggregates (incremental features)",
        ),
        TableSpec("feature_state", "silver/feature_state", "silver", (), "Per persona lifetime and window sums"),
        TableSpec(
            "feature_state_items",
            "silver/feature_state_items",
            "silver",
            (),
            "Per persona bought products and purchase channels; cookies of anonymous events",
        ),
        TableSpec("feature_state_log", "silver/feature_state_log", "silver", (), "Feature refreshes: mode and inputs"),
        TableSpec(
            "identity_map",
            "silver/identity_map",
            "silver",
            ("snapshot_date",),
            "Identifier (persona id, email, phone, cookie) -> canonical person id, with the rule that linked it",
        ),
        TableSpec(
            "identity_rejected",
            "silver/identity_rejected",
            "silver",
            ("snapshot_date",),
            "Identifiers and components the identity graph did not merge, with the reason",
        ),
        TableSpec("recommendations", "gold/recommendations", "gold", ("snapshot_date",), "Top products per customer"),
        TableSpec("audiences", "gold/audiences", "gold", (), "Audience registry"),
        TableSpec("audience_members", "gold/audience_members", "gold", ("audience_id",), "Current audience membership"),
        TableSpec(
            "audience_changes", "gold/audience_changes", "gold", ("snapshot_date",), "Members added/removed per refresh"
        ),
        TableSpec(
            "audience_refreshes", "gold/audience_refreshes", "gold", (), "Size, added, removed per audience refresh"
        ),
        TableSpec("audience_holdouts", "gold/audience_holdouts", "gold", (), "Holdout share and salt per audience"),
        TableSpec(
            "audience_groups", "gold/audience_groups", "gold", ("audience_id",), "Treated or holdout, per member"
        ),
        TableSpec("destinations", "gold/destinations", "gold", (), "Destination registry (files, webhook, delta)"),
        TableSpec(
            "destination_syncs", "ops/destination_syncs", "ops", (), "Syncs per audience and destination (watermarks)"
        ),
        TableSpec(
            "destination_dead_letters", "ops/destination_dead_letters", "ops", (), "Webhook batches that kept failing"
        ),
        TableSpec("insights_segments", "gold/insights_segments", "gold", ("snapshot_date",), "Per segment metrics"),
        TableSpec(
            "insights_migrations", "gold/insights_migrations", "gold", ("to_date",), "AI segment transition matrix"
        ),
        TableSpec(
            "insights_industry",
            "gold/insights_industry",
            "gold",
            ("snapshot_date",),
            "Monthly transaction value by industry",
        ),
        TableSpec(
            "insights_matrix", "gold/insights_matrix", "gold", ("snapshot_date",), "Fit x engagement grid per group"
        ),
        TableSpec(
            "insights_campaigns",
            "gold/insights_campaigns",
            "gold",
            ("snapshot_date",),
            "Campaign sends, opens, clicks, conversions per group",
        ),
        TableSpec(
            "insights_boundaries",
            "gold/insights_boundaries",
            "gold",
            ("snapshot_date",),
            "Numeric thresholds of rule audiences: members near, percentile drift",
        ),
        TableSpec("runs", "ops/runs", "ops", (), "Pipeline run summary per step"),
        TableSpec("run_locks", "ops/run_locks", "ops", (), "One run per pipeline and date: lock events"),
    ]
}


def table_spec(name: str) -> TableSpec:
    """The spec of a known table (unknown names get a clear error)."""
    try:
        return TABLES[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, list(TABLES), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise SegengineError(f"unknown table {name!r}{hint}") from None


class Lake:
    """Named Delta tables under one warehouse, on the backend the session supports."""

    def __init__(self, spark: SparkSession, config: Config, backend: Any):
        self.spark = spark
        self.config = config
        self.backend = backend

    @classmethod
    def open(cls, spark: SparkSession, config: Config) -> Lake:
        """Pick the backend (``delta.backend``: auto | embedded | jvm) and return a Lake."""
        return cls(spark, config, choose_backend(spark, config))

    # -------------------------------------------------------------- naming

    def uri(self, name: str) -> str:
        """The URI of table ``name`` (a path for the local warehouse)."""
        rel = self.config.tables.get(name) or table_spec(name).path
        if "://" in rel or rel.startswith("/"):
            return rel
        return self.config.warehouse_uri.rstrip("/") + "/" + rel

    def _uri(self, name_or_uri: str) -> str:
        if "/" in name_or_uri or "://" in name_or_uri:
            return name_or_uri
        return self.uri(name_or_uri)

    def _partition_by(self, name_or_uri: str, partition_by: Sequence[str] | None) -> Sequence[str] | None:
        if partition_by is not None:
            return partition_by
        spec = TABLES.get(name_or_uri)
        return spec.partition_by if spec else None

    # -------------------------------------------------------------- operations

    def exists(self, name: str) -> bool:
        return self.backend.exists(self._uri(name))

    def read(
        self,
        name: str,
        version: int | None = None,
        timestamp: str | dt.datetime | None = None,
        partitions: dict[str, Any] | None = None,
        where: dict[str, tuple[Any, Any]] | None = None,
    ) -> DataFrame:
        """Read the latest snapshot, or one ``version`` / ``timestamp`` (time travel).

        ``partitions`` prunes to those partition values (one value, or a list of
        values, per column) before any file is opened. ``where`` keeps the rows with
        ``low <= column <= high`` (``{"order_ts": (low, high)}``, inclusive, None for an
        open end); files whose partition value or min/max statistics rule the range
        out are never opened (:meth:`files` lists the ones that are).
        """
        if where:
            return self.backend.read(
                self._uri(name), version=version, timestamp=timestamp, partitions=partitions, where=where
            )
        return self.backend.read(self._uri(name), version=version, timestamp=timestamp, partitions=partitions)

    def read_rows(self, name: str, version: int | None = None) -> list[dict[str, Any]]:
        """Every row of a small table (e.g. the audience registry) as dicts, on the driver.

        Only for tables that stay small whatever the number of customers. The embedded
        backend reads them with delta-rs and no Spark job; values are as ``collect()``
        gives them.
        """
        if hasattr(self.backend, "read_rows"):
            return self.backend.read_rows(self._uri(name), version=version)
        return [r.asDict() for r in self.read(name, version=version).collect()]

    def files(
        self,
        name: str,
        version: int | None = None,
        partitions: dict[str, Any] | None = None,
        where: dict[str, tuple[Any, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """The data files :meth:`read` with the same arguments opens on the embedded backend.

        Each is ``{"path", "partition", "size", "min", "max"}``. Read from the Delta log
        with delta-rs whatever the backend (the JVM connector prunes on the same
        statistics when it plans the read).
        """
        return self._log_reader().files(self._uri(name), version=version, partitions=partitions, where=where)

    def changed_files(self, name: str, since_version: int, version: int | None = None) -> dict[str, list[dict]]:
        """Data files added and removed since ``since_version`` (see :meth:`files` for the format)."""
        return self._log_reader().changed_files(self._uri(name), since_version, version)

    def _log_reader(self) -> Any:
        if hasattr(self.backend, "changed_files"):
            return self.backend
        # The JVM backend keeps a delta-rs log reader of its own.
        return getattr(self.backend, "log", None) or _embedded(self.spark, self.config)

    def write(
        self,
        df: DataFrame,
        name: str,
        mode: str = "append",
        partition_by: Sequence[str] | None = None,
        replace_partitions: dict[str, Any] | None = None,
        evolve_schema: bool = False,
        operation: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> int:
        """Append, overwrite, or overwrite only ``replace_partitions``; returns the new version."""
        return self.backend.write(
            df,
            self._uri(name),
            mode=mode,
            partition_by=self._partition_by(name, partition_by),
            replace_partitions=replace_partitions,
            evolve_schema=evolve_schema,
            operation=operation,
            metadata=metadata,
        )

    def write_rows(
        self,
        rows: Sequence[Any],
        schema: StructType | str,
        name: str,
        mode: str = "append",
        operation: str | None = None,
        metadata: dict[str, Any] | None = None,
        evolve_schema: bool = False,
    ) -> int:
        """Append (or overwrite with) rows the driver holds: tuples, dicts or Rows of ``schema``.

        For small metadata (registry rows, run summaries, an empty table to create).
        The embedded backend commits them without a Spark job; otherwise this is
        :meth:`write` of ``createDataFrame(rows, schema)``. ``evolve_schema`` as for
        :meth:`write`.
        """
        if isinstance(schema, str):
            schema = self.spark.createDataFrame([], schema).schema
        uri = self._uri(name)
        partition_by = self._partition_by(name, None)
        if hasattr(self.backend, "write_rows"):
            return self.backend.write_rows(rows, schema, uri, mode, partition_by, operation, metadata, evolve_schema)
        df = self.spark.createDataFrame(list(rows), schema)
        return self.backend.write(
            df,
            uri,
            mode=mode,
            partition_by=partition_by,
            operation=operation,
            metadata=metadata,
            evolve_schema=evolve_schema,
        )

    def overwrite_partition(self, df: DataFrame, name: str, **partition: Any) -> int:
        """Replace exactly one partition (e.g. ``snapshot_date=...``); a rerun never duplicates."""
        return self.write(df, name, mode="overwrite", replace_partitions=partition)

    def merge(
        self,
        df: DataFrame,
        name: str,
        keys: Sequence[str],
        delete_missing_in: dict[str, Any] | None = None,
        evolve_schema: bool = False,
        operation: str = "MERGE",
        metadata: dict[str, Any] | None = None,
        within: dict[str, Any] | None = None,
    ) -> int:
        """Upsert ``df`` by ``keys``; optionally delete rows of one slice absent from ``df``.

        Args:
            within: partition column values (e.g. ``{"audience_id": a}``) that every
                source row has: the target is read, matched and rewritten only inside
                that slice, so the merge costs the slice, not the table. A source row
                outside it is an error.
        """
        return self.backend.merge(
            df,
            self._uri(name),
            keys,
            partition_by=self._partition_by(name, None),
            delete_missing_in=delete_missing_in,
            evolve_schema=evolve_schema,
            operation=operation,
            metadata=metadata,
            within=within,
        )

    def delete_where(self, name: str, condition: Any) -> int:
        """Delete rows matching a Column condition."""
        return self.backend.delete_where(self._uri(name), condition)

    def history(self, name: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Commit history, newest first."""
        return self.backend.history(self._uri(name), limit)

    def version(self, name: str) -> int:
        return self.backend.version(self._uri(name))


def choose_backend(spark: SparkSession, config: Config) -> Any:
    """The backend for ``config.delta.backend`` on this session.

    ``auto`` takes the JVM connector when its classes load and its SQL extension is
    on, otherwise the embedded backend. ``jvm`` without the jars is an error that says
    how to provide them.
    """
    from segengine.session import delta_extension_enabled, delta_jars_available

    choice = config.delta.backend  # one of DeltaBackend, checked when the config loaded
    if choice == "embedded":
        return _embedded(spark, config)
    jars = delta_jars_available(spark)
    if choice == "jvm":
        if not jars:
            raise EnvironmentProblem(
                "delta.backend=jvm but Delta's jars are not on the classpath: run with "
                f"--packages {config.delta.jvm_package} (or a cluster image that ships them), "
                "or set delta.backend=embedded"
            )
        if not delta_extension_enabled(spark):
            raise EnvironmentProblem(
                "delta.backend=jvm needs spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension "
                "and spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog"
            )
        return _jvm(spark, config)
    if jars and delta_extension_enabled(spark):
        return _jvm(spark, config)
    return _embedded(spark, config)


def _embedded(spark: SparkSession, config: Config) -> Any:
    from segengine.lake.embedded import EmbeddedBackend

    return EmbeddedBackend(spark, config.delta.storage_options, config.delta.commit_retries)


def _jvm(spark: SparkSession, config: Config) -> Any:
    from segengine.lake.jvm import JvmBackend

    return JvmBackend(spark, config.delta.commit_retries, config.delta.storage_options)
