"""The Delta transaction log through delta-rs, shared by both Delta backends.

Reading snapshots and their files (:mod:`.snapshot`), data files and their statistics
(:mod:`.files`), committing with a WriteSerializable conflict check (:mod:`.commit`)
and writing rows the driver holds (:mod:`.writer`). The embedded backend
(:mod:`segengine.lake.embedded`) builds its Spark reads and writes on
:class:`DeltaLogWriter`; the JVM backend (:mod:`segengine.lake.jvm`) reads versions,
history and small tables through it and commits driver rows with it.
"""

from __future__ import annotations

from segengine.lake.deltalog.commit import DeltaCommits
from segengine.lake.deltalog.snapshot import SUPPORTED_READER_FEATURES, SUPPORTED_WRITER_FEATURES, DeltaLog
from segengine.lake.deltalog.writer import DeltaLogWriter

__all__ = [
    "SUPPORTED_READER_FEATURES",
    "SUPPORTED_WRITER_FEATURES",
    "DeltaCommits",
    "DeltaLog",
    "DeltaLogWriter",
]
