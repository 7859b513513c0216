"""The studio's warm feature cache: the latest ``customer_features`` partition, in memory.

Counts and previews are what the segment builder asks for after every change, so they
must not re-read the partition from storage. :class:`FeatureCache` reads the latest
snapshot once, ``.cache()``\\s it and materialises it, and registers the rule compiler's
temp views over that cached frame (:func:`segengine.rules.register_views` with
``features=``). At most every ``check_seconds`` it looks at the Delta log for a newer
snapshot date (a log read, no rows); when one has landed it caches the new partition
and unpersists the old one.

A date other than the latest (a user looking back) is cached beside it, one such date
at a time: asking for another one replaces it.

Each cached date has its own view names (``studio_features_20250630`` …), so two
requests on different dates never see each other's views (a second cache in the same
process names its views ``studio2_…``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from segengine.errors import FeatureSnapshotMissing
from segengine.features.snapshots import feature_snapshot_dates, require_feature_partition
from segengine.rules import TableViews, register_views

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.lake import Lake

FEATURES_TABLE = "customer_features"
_INSTANCES = itertools.count(1)  # next() is atomic under the GIL


def studio_views(day: dt.date, prefix: str = "studio") -> TableViews:
    """The temp-view names of one cached date (``studio_features_20250630`` …)."""
    tag = day.strftime("%Y%m%d")
    return TableViews(
        features=f"{prefix}_features_{tag}",
        order_lines=f"{prefix}_order_lines_{tag}",
        events=f"{prefix}_events_{tag}",
        recommendations=f"{prefix}_recommendations_{tag}",
        products=f"{prefix}_products_{tag}",
    )


@dataclass(frozen=True)
class CachedSnapshot:
    """One cached feature partition and the views registered over it.

    Attributes:
        snapshot_date: the partition's date.
        frame: the cached DataFrame of the partition.
        views: the temp views compiled segments read for this date.
        rows: the partition's row count (counted when it was cached).
    """

    snapshot_date: dt.date
    frame: DataFrame
    views: TableViews
    rows: int


class FeatureCache:
    """The latest feature partition kept cached, re-cached when a newer one lands.

    Args:
        spark: the warm session.
        lake: the :class:`~segengine.lake.Lake`.
        check_seconds: look for a newer snapshot at most this often (0: on every call).
        clock: seconds, monotonic (tests pass a fake one).
    """

    def __init__(
        self,
        spark: SparkSession,
        lake: Lake,
        check_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spark = spark
        self.lake = lake
        self.check_seconds = check_seconds
        self._clock = clock
        self._lock = threading.RLock()
        self._latest: CachedSnapshot | None = None
        self._other: CachedSnapshot | None = None
        self._latest_date: dt.date | None = None
        self._checked_at: float | None = None
        # Temp views are per session: two caches over one session keep apart by prefix.
        number = next(_INSTANCES)
        self._prefix = "studio" if number == 1 else f"studio{number}"

    # ------------------------------------------------------------ dates

    def latest_date(self) -> dt.date | None:
        """The newest snapshot date, from the Delta log at most every ``check_seconds``.

        Returns:
            The date, or None when ``customer_features`` has no partition yet.
        """
        with self._lock:
            now = self._clock()
            if self._checked_at is None or now - self._checked_at >= self.check_seconds:
                dates = feature_snapshot_dates(self.lake)
                self._latest_date = dates[-1] if dates else None
                self._checked_at = now
            return self._latest_date

    # ------------------------------------------------------------ frames

    def snapshot(self, day: dt.date | None = None) -> CachedSnapshot:
        """The cached partition of ``day`` (default: the latest), caching it if needed.

        Raises:
            FeatureSnapshotMissing: no partition for ``day`` (or none at all).
        """
        with self._lock:
            latest = self.latest_date()
            if day is None or day == latest:
                if latest is None:
                    raise FeatureSnapshotMissing(
                        f"no {FEATURES_TABLE} partition yet; run `segengine features --date YYYY-MM-DD` first"
                    )
                if self._latest is None or self._latest.snapshot_date != latest:
                    old = self._latest
                    if self._other is not None and self._other.snapshot_date == latest:
                        self._latest, self._other = self._other, None
                    else:
                        self._latest = self._load(latest)
                    if old is not None:
                        self._drop(old)
                return self._latest
            if self._other is None or self._other.snapshot_date != day:
                require_feature_partition(self.lake, day)
                old = self._other
                self._other = self._load(day)
                if old is not None:
                    self._drop(old)
            return self._other

    def cached_dates(self) -> list[dt.date]:
        """The dates held in memory now (for tests and the status line)."""
        with self._lock:
            return sorted(s.snapshot_date for s in (self._latest, self._other) if s is not None)

    def close(self) -> None:
        """Unpersist everything (the server is stopping)."""
        with self._lock:
            for snap in (self._latest, self._other):
                if snap is not None:
                    self._drop(snap)
            self._latest = self._other = None

    def _load(self, day: dt.date) -> CachedSnapshot:
        frame = self.lake.read(FEATURES_TABLE, partitions={"snapshot_date": day}).cache()
        rows = frame.count()  # materialises the cache: the first count of a segment is warm
        views = studio_views(day, self._prefix)
        register_views(self.spark, self.lake, day, views=views, features=frame)
        return CachedSnapshot(day, frame, views, rows)

    def _drop(self, snap: CachedSnapshot) -> None:
        for name in (
            snap.views.features,
            snap.views.order_lines,
            snap.views.events,
            snap.views.recommendations,
            snap.views.products,
        ):
            self.spark.catalog.dropTempView(name)
        snap.frame.unpersist()
