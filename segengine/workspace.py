"""A notebook-shaped facade over segengine: one object, DataFrames and small typed results.

Every call of the library takes ``(spark, lake, config, date)`` and most return a dict
after writing a table. In a notebook that means re-reading tables with ``lake.read`` and
passing the same three objects everywhere. :class:`Workspace` holds them once; each method
delegates to the existing function (nothing is computed here) and accepts a
``datetime.date`` or an ISO string ``YYYY-MM-DD`` for every date (read by the shared
:func:`segengine.dates.parse_date`, so a bad date is the same one-line
:class:`~segengine.errors.InvalidDate` everywhere).

Example::

    from segengine import Workspace

    ws = Workspace.open(warehouse="warehouse")
    ws.features("2025-06-30").groupBy("value_tier").count().show()
    churn = ws.segment("conf/segments/churn_risk.yaml")
    churn.count("2025-06-30")            # SegmentCount(total=..., by_persona_type={...})
    churn.members("2025-06-30")          # DataFrame(persona_id, persona_type)
    ws.audiences()                       # the registry as a DataFrame
    print(ws.profile("P000042"))         # the customer 360, as text
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segengine.audiences import create_audience, get_audience, list_audiences, members, resolver
from segengine.audiences.registry import Audience, registry_schema
from segengine.config import Config, load_config
from segengine.dates import parse_date
from segengine.features.snapshots import feature_snapshot_dates, require_feature_partition
from segengine.generate import generate_bronze
from segengine.insights import build_insights
from segengine.insights.migrations import migrations
from segengine.insights.profile import customer_profile, format_profile
from segengine.insights.report import render_report
from segengine.lake import Lake
from segengine.rules import (
    Segment,
    compile_segment,
    count_by_persona_type,
    directory_resolver,
    evaluate_segment,
    parse_segment,
)
from segengine.session import build_spark, quiet_python_logs

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.rules.compile import Resolver

DateLike = dt.date | str
"""A ``datetime.date`` (or ``datetime``) or its ISO string ``YYYY-MM-DD``."""

SegmentDoc = Segment | Mapping[str, Any] | str | Path
"""A parsed :class:`~segengine.rules.Segment`, a segment document, YAML/JSON text or a file path."""


@dataclass(frozen=True)
class StepResult:
    """What a writing step (generate, features, train, score) reports.

    Attributes:
        step: the step's name (``features``, ``train_segments``, …).
        snapshot_date: the date it ran for (None for ``generate``).
        summary: the library function's own summary, unchanged.
    """

    step: str
    snapshot_date: dt.date | None
    summary: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.summary[key]


@dataclass(frozen=True)
class SegmentCount:
    """How many personas a segment selects on a date, by persona type."""

    segment: str
    snapshot_date: dt.date
    by_persona_type: dict[str, int]
    total: int

    def __str__(self) -> str:
        parts = ", ".join(f"{k} {v:,d}" for k, v in self.by_persona_type.items())
        return f"{self.segment} on {self.snapshot_date.isoformat()}: {self.total:,d} ({parts})"


@dataclass(frozen=True)
class Insights:
    """The insight tables of one date, after :func:`segengine.insights.build_insights` wrote them.

    Attributes:
        snapshot_date: the date.
        summary: build_insights' summary (rows written, reference dates, stability).
        segments: the ``insights_segments`` partition of the date (metrics per group).
    """

    snapshot_date: dt.date
    summary: dict[str, Any]
    segments: DataFrame

    @property
    def stability(self) -> float | None:
        """The AI segment stability since the previous snapshot (None for the first one)."""
        return self.summary.get("stability")


@dataclass(frozen=True)
class Profile:
    """One persona's 360 profile (:func:`segengine.insights.profile.customer_profile`).

    ``str(profile)`` is the sectioned text the CLI prints; ``data`` the JSON-ready dict.
    """

    persona_id: str
    snapshot_date: dt.date
    data: dict[str, Any] = field(repr=False)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __str__(self) -> str:
        return format_profile(self.data)


def _day(value: DateLike, what: str = "date") -> dt.date:
    return parse_date(value, what)


def _override_text(key: str, value: object) -> str:
    """``spark__master="local[2]"`` -> ``spark.master=local[2]`` (values other than text as JSON)."""
    text = value if isinstance(value, str) else json.dumps(value)
    return f"{key.replace('__', '.')}={text}"


class SegmentQuery:
    """A validated segment, evaluated on any snapshot date (:func:`segengine.rules.evaluate_segment`)."""

    def __init__(self, workspace: Workspace, segment: Segment, resolve: Resolver) -> None:
        self._ws = workspace
        self.segment = segment
        self._resolve = resolve

    @property
    def name(self) -> str:
        return self.segment.name

    def __repr__(self) -> str:
        return f"SegmentQuery({self.segment.name!r})"

    def members(self, date: DateLike) -> DataFrame:
        """DataFrame(persona_id, persona_type) of the personas in the segment on ``date``.

        Raises:
            InvalidDate: ``date`` is not a real day YYYY-MM-DD.
            FeatureSnapshotMissing: ``customer_features`` has no partition for the date.
        """
        ws = self._ws
        return evaluate_segment(ws.spark, ws.lake, self.segment, _day(date), resolver=self._resolve)

    def count(self, date: DateLike) -> SegmentCount:
        """The members on ``date`` counted by persona type (one small aggregate)."""
        day = _day(date)
        counts = count_by_persona_type(self.members(day))
        total = counts.pop("total")
        return SegmentCount(self.segment.name, day, counts, total)

    def explain(self, date: DateLike) -> str:
        """The segment in words and its Spark SQL for ``date`` (no Spark work)."""
        return compile_segment(self.segment, _day(date), resolver=self._resolve).explain()


class AudienceHandle:
    """A saved audience of the registry (:mod:`segengine.audiences`)."""

    def __init__(self, workspace: Workspace, audience: Audience) -> None:
        self._ws = workspace
        self.audience = audience

    @property
    def audience_id(self) -> str:
        return self.audience.audience_id

    @property
    def name(self) -> str:
        return self.audience.name

    def __repr__(self) -> str:
        return f"AudienceHandle({self.audience.name!r}, {self.audience.kind}, {self.audience.source})"

    def members(self) -> DataFrame:
        """DataFrame(persona_id, since): the current members."""
        ws = self._ws
        return members(ws.spark, ws.lake, self.audience.audience_id, ws.user)


class Workspace:
    """A session, a configuration and the lake they open, with notebook-shaped methods.

    Args:
        spark: the SparkSession (see :func:`segengine.session.build_spark`).
        config: the configuration (see :func:`segengine.config.load_config`).
        lake: the Lake to use (default ``Lake.open(spark, config)``).
        user: the acting user for audiences (visibility, ownership); None is the system
            account, which sees every audience.
    """

    def __init__(self, spark: SparkSession, config: Config, lake: Lake | None = None, user: str | None = None) -> None:
        self.spark = spark
        self.config = config
        self.lake = lake if lake is not None else Lake.open(spark, config)
        self.user = user

    @classmethod
    def open(
        cls,
        warehouse: str | Path | None = None,
        *,
        env: str | None = None,
        conf: Sequence[str] = (),
        user: str | None = None,
        **overrides: object,
    ) -> Workspace:
        """Load the configuration, build its SparkSession and open the lake.

        Args:
            warehouse: the warehouse folder or URI (default: the configuration's).
            env: the configuration overlay (``local``/``cluster``; default as the CLI).
            conf: ``key=value`` overrides, as ``--conf`` takes them.
            user: the acting user for audiences.
            **overrides: more overrides as keywords, ``__`` between sections:
                ``spark__master="local[2]"``, ``segments__k=4``.

        Returns:
            The workspace.
        """
        texts = [*conf, *(_override_text(k, v) for k, v in overrides.items())]
        if warehouse is not None:
            texts.insert(0, f"warehouse={warehouse}")
        config = load_config(env, overrides=texts)
        # As the CLI and the jobs do: MLflow's INFO lines (temp folders, DFS copies) off
        # unless MLFLOW_LOGGING_LEVEL says otherwise; read when MLflow is first imported.
        quiet_python_logs()
        spark = build_spark(config)
        return cls(spark, config, user=user)

    def __repr__(self) -> str:
        return f"Workspace(env={self.config.env!r}, backend={self.lake.backend.name!r})"

    def stop(self) -> None:
        """Stop the SparkSession."""
        self.spark.stop()

    # ------------------------------------------------------------------ data

    def generate(self, personas: int, seed: int = 42) -> StepResult:
        """Generate sample raw files and ingest them into the bronze tables (:func:`generate_bronze`)."""
        return StepResult("generate", None, generate_bronze(self.spark, self.lake, self.config, personas, seed))

    def table(self, name: str) -> DataFrame:
        """Any lake table by name (``personas``, ``order_lines``, ``recommendations``, …)."""
        return self.lake.read(name)

    # -------------------------------------------------------------- features

    def snapshot_dates(self) -> list[dt.date]:
        """The dates that have customer features, ascending."""
        return feature_snapshot_dates(self.lake)

    def refresh_features(self, date: DateLike) -> StepResult:
        """Write the ``customer_features`` partition of ``date`` (:func:`compute_features`)."""
        return self._step("features", date)

    def features(self, date: DateLike) -> DataFrame:
        """The ``customer_features`` partition of ``date``: one row per persona.

        Raises:
            InvalidDate: ``date`` is not a real day YYYY-MM-DD.
            FeatureSnapshotMissing: no partition for the date (naming the latest one).
        """
        day = require_feature_partition(self.lake, _day(date))
        return self.lake.read("customer_features", partitions={"snapshot_date": day})

    # ---------------------------------------------------------------- models

    def _step(self, name: str, date: DateLike) -> StepResult:
        """Run the pipeline step ``name`` (:data:`segengine.pipeline.daily.STEPS_BY_NAME`) for ``date``."""
        from segengine.pipeline.daily import STEPS_BY_NAME

        day = _day(date)
        return StepResult(name, day, STEPS_BY_NAME[name].function()(self.spark, self.lake, self.config, day))

    def train_segments(self, date: DateLike) -> StepResult:
        """Train, register and (gated) promote the AI segment models on ``date``'s features."""
        return self._step("train_segments", date)

    def score_segments(self, date: DateLike) -> StepResult:
        """Write ``ai_segment`` and ``b2b_segment`` into ``date``'s feature partition."""
        return self._step("score_segments", date)

    def train_clv(self, date: DateLike) -> StepResult:
        """Train, evaluate and register (gated) the CLV model for ``date``."""
        return self._step("train_clv", date)

    def score_clv(self, date: DateLike) -> StepResult:
        """Write ``clv_predicted`` and ``clv_percentile`` into ``date``'s feature partition."""
        return self._step("score_clv", date)

    def train_propensity(self, date: DateLike) -> StepResult:
        """Train, evaluate, calibrate and register (gated) the purchase propensity and churn risk models."""
        return self._step("train_propensity", date)

    def score_propensity(self, date: DateLike) -> StepResult:
        """Write ``purchase_propensity_30d``, ``churn_risk`` and their percentiles into ``date``'s feature partition."""
        return self._step("score_propensity", date)

    # -------------------------------------------------------------- segments

    def segment(self, doc: SegmentDoc) -> SegmentQuery:
        """A segment, validated now (:func:`segengine.rules.parse_segment`).

        Args:
            doc: a segment document (mapping), YAML/JSON text, a ``.yaml``/``.json``
                path, or a parsed Segment. ``in_segment`` names resolve to the segment
                files next to a path first, then to the rule audiences of the registry.

        Raises:
            SegmentDefinitionError: naming the source, line and path of the problem.
        """
        audiences = resolver(self.spark, self.lake, self.user)
        if isinstance(doc, Segment):
            return SegmentQuery(self, doc, audiences)
        segment = parse_segment(
            dict(doc) if isinstance(doc, Mapping) else doc, max_conditions=self.config.rules.max_conditions
        )
        # A document read from a file names it as its source: its folder holds the saved segments.
        from_file = segment.source != "<segment>"
        resolve = (
            directory_resolver(Path(segment.source).resolve().parent, fallback=audiences) if from_file else audiences
        )
        return SegmentQuery(self, segment, resolve)

    # ------------------------------------------------------------- audiences

    def audiences(self) -> DataFrame:
        """The audience registry as the user sees it, with each audience's latest size.

        Returns:
            The registry columns (``definition`` as JSON text) plus ``size`` and
            ``refreshed_for`` (null before the first refresh), newest update first.
        """
        from pyspark.sql import types as T

        rows = list_audiences(self.spark, self.lake, self.user)
        schema = registry_schema()
        schema = schema.add("size", T.LongType()).add("refreshed_for", T.DateType())
        data = [{**r, "definition": json.dumps(r["definition"], sort_keys=True)} for r in rows]
        return self.spark.createDataFrame([tuple(r[f] for f in schema.fieldNames()) for r in data], schema)

    def audience(self, name: str) -> AudienceHandle:
        """A saved audience by name or id.

        Raises:
            UnknownAudience: no such audience (with a "did you mean").
        """
        return AudienceHandle(self, get_audience(self.spark, self.lake, name, self.user))

    def create_audience(
        self,
        definition: Mapping[str, Any],
        *,
        name: str | None = None,
        kind: str = "dynamic",
        date: DateLike | None = None,
        owner: str | None = None,
        visibility: str = "shared",
    ) -> AudienceHandle:
        """Save a rules audience (:func:`segengine.audiences.create_audience`).

        Args:
            definition: the segment document.
            name: default the document's ``name``.
            kind: ``dynamic`` (recomputed by refresh) or ``static``.
            date: evaluate the membership on this date now (a static audience needs one).
            owner: default the workspace's user, else ``analyst``.
            visibility: ``shared`` or ``private``.
        """
        doc = dict(definition)
        label = name or str(doc.get("name") or "")
        day = _day(date) if date is not None else None
        audience_id = create_audience(
            self.spark,
            self.lake,
            self.config,
            label,
            owner or self.user or "analyst",
            kind,
            "rules",
            doc,
            visibility=visibility,
            snapshot_date=day,
        )
        return self.audience(audience_id)

    # -------------------------------------------------------------- insights

    def insights(self, date: DateLike) -> Insights:
        """Build (write) the insight tables of ``date`` and return its segment metrics."""
        day = _day(date)
        summary = build_insights(self.spark, self.lake, self.config, day)
        segments = self.lake.read("insights_segments", partitions={"snapshot_date": day})
        return Insights(day, summary, segments)

    def migrations(self, from_date: DateLike, to_date: DateLike) -> DataFrame:
        """The AI segment transition matrix between two feature snapshots."""
        return migrations(self.spark, self.lake, _day(from_date, "from date"), _day(to_date, "to date"))

    def report(self, date: DateLike, path: str | Path | None = None) -> Path:
        """Write the HTML report of ``date`` (insights must be built); the file written."""
        day = _day(date)
        return Path(render_report(self.spark, self.lake, self.config, day, str(path) if path is not None else None))

    def profile(self, persona_id: str, date: DateLike | None = None) -> Profile:
        """The 360 profile of one persona, as of ``date`` (default: the latest snapshot)."""
        day = _day(date) if date is not None else None
        data = customer_profile(self.spark, self.lake, self.config, persona_id, day, self.user)
        return Profile(persona_id, parse_date(data["snapshot_date"], "snapshot date"), data)
