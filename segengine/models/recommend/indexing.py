"""String ids to the consecutive ints ALS needs, without collecting the ids."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql import Window
from pyspark.sql import functions as F

from segengine.errors import ModelError
from segengine.models.recommend.schema import MAX_INDEX

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def index_ids(df: DataFrame, id_col: str, index_col: str) -> DataFrame:
    """Map the distinct string ids of ``df[id_col]`` to consecutive ints 0..n-1 (sorted by id).

    Built-ins only and no id reaches the driver: ids are range-partitioned and sorted,
    each row gets its row number within its Spark partition, and the driver collects
    one count per partition to turn those into global offsets (the zipWithIndex idea).

    Args:
        df: any DataFrame with ``id_col``.
        id_col: string id column.
        index_col: name of the int column to add.

    Returns:
        DataFrame(id_col, index_col int), one row per distinct non-null id.

    Raises:
        ModelError: more ids than an int can index.
    """
    # localCheckpoint pins the partitioning so spark_partition_id() is stable between
    # the count job and the final projection.
    ids = (
        df.select(id_col)
        .where(F.col(id_col).isNotNull())
        .distinct()
        .orderBy(id_col)
        .withColumn("_pid", F.spark_partition_id())
        .localCheckpoint()
    )
    counts = sorted((r["_pid"], r["count"]) for r in ids.groupBy("_pid").count().collect())
    total = sum(c for _, c in counts)
    if total > MAX_INDEX:
        raise ModelError(f"{total} distinct {id_col} values: more than ALS can index ({MAX_INDEX})")
    offsets, running = [], 0
    for pid, count in counts:
        offsets.append((pid, running))
        running += count
    spark = df.sparkSession
    offset_df = spark.createDataFrame(offsets or [(0, 0)], "_pid int, _offset long")
    w = Window.partitionBy("_pid").orderBy(id_col)
    return (
        ids.join(F.broadcast(offset_df), "_pid")
        .withColumn(index_col, (F.col("_offset") + F.row_number().over(w) - 1).cast("int"))
        .select(id_col, index_col)
    )
