"""Whether the configured warehouse exists, before anything could create it.

A SparkSession on a local warehouse creates the folder (its ``spark.local.dir`` and
``spark.sql.warehouse.dir`` live there), and so does MLflow's SQLite store: a command
pointed at a mistyped warehouse would leave an empty one behind and then report that
there is no data. Commands that only read call :func:`require_warehouse` first; only the
commands that load data (``generate``, ``ingest``, ``demo``, ``pipeline daily``) may
create it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from segengine.errors import MissingInput

if TYPE_CHECKING:
    from segengine.config import Config


def local_warehouse_path(config: Config) -> Path | None:
    """The local folder of the warehouse, or None for a remote one (s3://, abfss://, …)."""
    if not config.is_local_warehouse:
        return None
    return Path(config.warehouse_uri.removeprefix("file://").removeprefix("file:"))


def require_warehouse(config: Config) -> None:
    """Refuse a local warehouse folder that does not exist (remote ones are not checked).

    Raises:
        MissingInput: naming the folder and how to point at another one.
    """
    path = local_warehouse_path(config)
    if path is not None and not path.is_dir():
        raise MissingInput(
            f"warehouse {path} does not exist (give the right one with --conf warehouse=PATH; "
            "`segengine ingest` or `segengine demo` create a new one)"
        )
