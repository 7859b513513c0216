"""Lookalike expansion: grow a seed audience by the N most similar personas (MLlib LSH).

Similarity is Euclidean distance on chosen numeric catalog attributes, each imputed
with the population mean and standardised over the population (MLlib ``Imputer`` ->
``VectorAssembler`` -> ``StandardScaler``). A candidate's distance is the distance to
its **nearest seed persona** (not to a seed centroid: a seed made of two different
groups should attract lookalikes of both).

Finding the nearest candidates without comparing every candidate with every seed
uses MLlib's ``BucketedRandomProjectionLSH`` as the hash family, with two decisions:

* **AND over hash tables, multi-probe over neighbours.** Spark's own
  ``approxSimilarityJoin`` ORs the tables, and each table is one random 1-D projection:
  with a handful of attributes a bucket is a slab holding a large share of the
  population, so the join degenerates to a cross join. Instead a persona's *cell* is
  the tuple of all its bucket ids, and each seed probes its own cell and every
  neighbouring cell (each bucket id +/-1: 3^tables probes). Because a projection never
  lengthens a distance, every candidate within ``bucket_length`` of a seed lands in a
  probed cell of that seed: ranking inside that radius is exact.
* **Widening until exactly N.** The first bucket length is estimated from a sample
  (the distance below which about N candidates fall); while fewer than N candidates
  are found within ``bucket_length`` of a seed, the bucket length grows x1.5, up to
  ``config.lookalike.max_widenings`` times. If still short (only possible with a tiny
  ``max_widenings``), the remainder is filled by distance to the seed centroid, so the
  result always has exactly N rows when the population allows it.

Ties are broken by persona_id, so a rerun returns the same audience.
"""

from __future__ import annotations

import datetime as dt
import difflib
import itertools
import logging
from typing import TYPE_CHECKING, Any

from pyspark.sql import Column
from pyspark.sql import functions as F

from segengine.errors import AudienceError, ModelError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.config import Config, LookalikeConfig
    from segengine.lake import Lake

log = logging.getLogger(__name__)

NUMERIC_TYPES = ("integer", "double")
# Encodings we know for non-numeric attributes: booleans become 0/1.
ENCODABLE_TYPES = ("boolean",)
VEC = "vec"


# ----------------------------------------------------------------- validation


def validate_attributes(by: list[str], columns: list[str] | None = None) -> list[str]:
    """Check the attributes a lookalike may use.

    Args:
        by: attribute names from the feature catalog.
        columns: the feature table's columns (to catch catalog/table drift), or None.

    Returns:
        ``by`` without duplicates, in order.

    Raises:
        ModelError: empty list, unknown name (with the closest catalog name), or a
            non-numeric attribute that has no encoding.
    """
    from segengine.features.catalog import CATALOG

    if not by:
        raise ModelError("lookalike: --by needs at least one numeric attribute, e.g. recency_days,frequency,monetary")
    out: list[str] = []
    for name in by:
        name = name.strip()
        attr = CATALOG.get(name)
        if attr is None:
            close = difflib.get_close_matches(name, list(CATALOG), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ModelError(f"lookalike: unknown attribute {name!r}{hint}; see `segengine features catalog`")
        if attr.type not in NUMERIC_TYPES + ENCODABLE_TYPES:
            numeric = [a.name for a in CATALOG.values() if a.type in NUMERIC_TYPES][:6]
            raise ModelError(
                f"lookalike: attribute {name!r} is {attr.type} and has no numeric encoding; "
                f"use numeric attributes such as {', '.join(numeric)}"
            )
        if columns is not None and name not in columns:
            raise ModelError(f"lookalike: attribute {name!r} is in the catalog but not in customer_features")
        if name not in out:
            out.append(name)
    return out


# ----------------------------------------------------------------- vectors


def scale_attributes(features: DataFrame, by: list[str]) -> DataFrame:
    """Standardised attribute vectors over the whole population.

    Args:
        features: DataFrame(persona_id, *by).
        by: validated numeric (or boolean) attributes.

    Returns:
        DataFrame(persona_id, vec): mean-imputed, zero-mean unit-variance vector.
    """
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import Imputer, StandardScaler, VectorAssembler

    raw = [f"_raw_{c}" for c in by]
    df = features.select("persona_id", *[F.col(c).cast("double").alias(r) for c, r in zip(by, raw, strict=True)])
    # An all-null column has no mean to impute; 0 is then as good as any constant.
    imp = [f"_imp_{c}" for c in by]
    pipeline = Pipeline(
        stages=[
            Imputer(inputCols=raw, outputCols=imp, strategy="mean"),
            VectorAssembler(inputCols=imp, outputCol="_assembled", handleInvalid="keep"),
            StandardScaler(inputCol="_assembled", outputCol=VEC, withMean=True, withStd=True),
        ]
    )
    nonnull = df.agg(*[F.count(r).alias(r) for r in raw]).first()
    df = df.fillna({r: 0.0 for r in raw if not nonnull[r]})
    return pipeline.fit(df).transform(df).select("persona_id", VEC)


def _as_array(col: str) -> Column:
    from pyspark.ml.functions import vector_to_array

    return vector_to_array(F.col(col))


def euclidean(a: Column, b: Column) -> Column:
    """Euclidean distance of two equal-length double arrays, with built-ins."""
    sq = F.zip_with(a, b, lambda x, y: (x - y) * (x - y))
    return F.sqrt(F.aggregate(sq, F.lit(0.0), lambda acc, x: acc + x))


# ----------------------------------------------------------------- exact and LSH search


def nearest_exact(candidates: DataFrame, seeds: DataFrame, size: int) -> DataFrame:
    """Exact reference: every candidate against every seed (a cross join).

    Args:
        candidates: DataFrame(persona_id, vec).
        seeds: DataFrame(persona_id, vec).
        size: how many to return.

    Returns:
        DataFrame(persona_id, distance) of the ``size`` candidates nearest to any seed.
    """
    s = seeds.select(_as_array(VEC).alias("_s"))
    c = candidates.select("persona_id", _as_array(VEC).alias("_c"))
    pairs = c.crossJoin(s).select("persona_id", euclidean(F.col("_c"), F.col("_s")).alias("distance"))
    best = pairs.groupBy("persona_id").agg(F.min("distance").alias("distance"))
    return best.orderBy("distance", "persona_id").limit(size)


def _cells(vectors: DataFrame, bucket_length: float, tables: int, seed: int) -> DataFrame:
    """Add ``_cell`` (array of bucket ids, one per hash table) with MLlib's BRP LSH."""
    from pyspark.ml.feature import BucketedRandomProjectionLSH

    lsh = BucketedRandomProjectionLSH(
        inputCol=VEC, outputCol="_hashes", bucketLength=bucket_length, numHashTables=tables, seed=seed
    )
    model = lsh.fit(vectors)
    hashed = model.transform(vectors)
    # Each hash is a 1-element vector; posexplode keeps the table order.
    exploded = hashed.select("persona_id", F.posexplode("_hashes").alias("_t", "_h")).select(
        "persona_id", "_t", _as_array("_h")[0].cast("long").alias("_b")
    )
    cells = exploded.groupBy("persona_id").agg(F.sort_array(F.collect_list(F.struct("_t", "_b"))).alias("_tb"))
    cells = cells.select("persona_id", F.transform("_tb", lambda s: s["_b"]).alias("_cell"))
    return vectors.join(cells, "persona_id")


def nearest_lsh(
    candidates: DataFrame,
    seeds: DataFrame,
    bucket_length: float,
    tables: int,
    seed: int,
) -> DataFrame:
    """Candidates found by multi-probe LSH with their distance to the nearest probing seed.

    Args:
        candidates: DataFrame(persona_id, vec).
        seeds: DataFrame(persona_id, vec).
        bucket_length: BRP bucket length (the radius inside which the search is exact).
        tables: number of hash tables (probes per seed: 3 ** tables).
        seed: random seed of the projections.

    Returns:
        DataFrame(persona_id, distance): every candidate sharing a probed cell with a seed.
    """
    both = candidates.withColumn("_is_seed", F.lit(False)).unionByName(seeds.withColumn("_is_seed", F.lit(True)))
    cells = _cells(both, bucket_length, tables, seed)
    spark = candidates.sparkSession
    offsets = spark.createDataFrame(
        [(list(o),) for o in itertools.product((-1, 0, 1), repeat=tables)], "_off array<long>"
    )
    probes = (
        cells.where("_is_seed")
        .crossJoin(F.broadcast(offsets))
        .select(
            F.zip_with("_cell", "_off", lambda a, b: a + b).alias("_cell"),
            _as_array(VEC).alias("_s"),
        )
    )
    cands = cells.where(~F.col("_is_seed")).select("persona_id", "_cell", _as_array(VEC).alias("_c"))
    pairs = cands.join(probes, "_cell").select("persona_id", euclidean(F.col("_c"), F.col("_s")).alias("distance"))
    return pairs.groupBy("persona_id").agg(F.min("distance").alias("distance"))


def estimate_radius(candidates: DataFrame, seeds: DataFrame, size: int, n_candidates: int, sample_size: int) -> float:
    """Distance within which about ``size`` candidates lie, from a sample (exact on the sample).

    Sampling seeds can only overestimate nearest-seed distances, so the estimate errs
    towards a wider first search rather than an extra widening.

    Returns:
        The estimated radius (> 0).
    """
    frac_c = min(1.0, sample_size / max(n_candidates, 1))
    c = candidates.sample(fraction=frac_c, seed=17)
    s = seeds.orderBy(F.xxhash64("persona_id")).limit(max(50, sample_size // 4))
    best = nearest_exact(c, s, size=max(1, sample_size * 4)).select("distance")
    q = min(1.0, size / max(n_candidates, 1) * 1.2)
    got = best.approxQuantile("distance", [q], 0.01)
    radius = got[0] if got else 0.0
    return max(radius, 1e-3)


# ----------------------------------------------------------------- public API


def expand_vectors(
    vectors: DataFrame,
    seed_ids: DataFrame,
    size: int,
    cfg: LookalikeConfig,
) -> tuple[DataFrame, dict[str, Any]]:
    """Lookalike search on prepared vectors (see the module docstring).

    Args:
        vectors: DataFrame(persona_id, vec) of the whole population.
        seed_ids: DataFrame(persona_id).
        size: exactly how many to return.
        cfg: ``config.lookalike``.

    Returns:
        (DataFrame(persona_id, distance) with exactly ``size`` rows ordered by distance,
        parameters used: bucket_length, tables, widenings, seed and candidate counts).

    Raises:
        AudienceError: empty seed, or the seed has no persona in the population.
        ModelError: ``size`` <= 0 or more than the personas outside the seed.
    """
    if size <= 0:
        raise ModelError(f"lookalike: size must be a positive number of personas, got {size}")
    seed_ids = seed_ids.select("persona_id").where(F.col("persona_id").isNotNull()).distinct()
    n_seed_ids = seed_ids.count()
    if n_seed_ids == 0:
        raise AudienceError("lookalike: the seed audience is empty")
    vectors = vectors.cache()
    seeds = vectors.join(seed_ids, "persona_id", "left_semi").cache()
    candidates = vectors.join(seed_ids, "persona_id", "left_anti").cache()
    n_seed = seeds.count()
    if n_seed == 0:
        raise AudienceError(f"lookalike: none of the seed's {n_seed_ids} personas is in customer_features")
    n_cand = candidates.count()
    if size > n_cand:
        raise ModelError(
            f"lookalike: asked for {size} personas but only {n_cand} are available outside the seed "
            f"({n_seed} seed personas in a population of {n_seed + n_cand})"
        )
    radius = estimate_radius(candidates, seeds, size, n_cand, cfg.sample_size)
    bucket = max(radius * 1.05, 1e-3)
    tables = cfg.num_hash_tables
    found = None
    widenings = 0
    for widenings in range(cfg.max_widenings + 1):
        found = nearest_lsh(candidates, seeds, bucket, tables, cfg.seed).cache()
        exact_inside = found.where(F.col("distance") < bucket).count()
        if exact_inside >= size:
            break
        log.info("lookalike widening %d: %d of %d inside %.3f", widenings, exact_inside, size, bucket)
        found.unpersist()
        found = None
        bucket *= 1.5
    if found is None:
        # Out of widenings: take the last probe's finds, then the seed centroid's nearest.
        found = nearest_lsh(candidates, seeds, bucket, tables, cfg.seed).cache()
    top = found.orderBy("distance", "persona_id").limit(size)
    n_found = top.count()
    filled = 0
    if n_found < size:
        centroid = _centroid(seeds)
        rest = candidates.join(top, "persona_id", "left_anti").select(
            "persona_id", euclidean(_as_array(VEC), F.lit(centroid)).alias("_d")
        )
        # Ranked after every LSH find, whatever their distance.
        extra = (
            rest.orderBy("_d", "persona_id")
            .limit(size - n_found)
            .select("persona_id", (F.col("_d") + F.lit(1e9)).alias("distance"))
        )
        top = top.unionByName(extra)
        filled = size - n_found
    params = {
        "bucket_length": bucket,
        "num_hash_tables": tables,
        "widenings": widenings,
        "seed_personas": n_seed,
        "seed_ids": n_seed_ids,
        "candidates": n_cand,
        "filled_by_centroid": filled,
    }
    return top.orderBy("distance", "persona_id"), params


def _centroid(seeds: DataFrame) -> list[float]:
    from pyspark.ml.stat import Summarizer

    row = seeds.select(Summarizer.mean(F.col(VEC)).alias("m")).first()
    return [float(x) for x in row["m"]]


def expand(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    seed_persona_ids: DataFrame,
    size: int,
    by: list[str],
    snapshot_date: dt.date,
) -> DataFrame:
    """Expand a seed audience to exactly ``size`` similar personas not in it.

    Args:
        spark: the session.
        lake: the Lake (reads the ``customer_features`` partition of ``snapshot_date``).
        config: configuration (``config.lookalike``).
        seed_persona_ids: DataFrame with a ``persona_id`` column.
        size: how many lookalikes (exactly).
        by: numeric catalog attributes to compare on.
        snapshot_date: which features partition.

    Returns:
        DataFrame(persona_id, distance) with exactly ``size`` rows, nearest first.

    Raises:
        ModelError / AudienceError: see :func:`validate_attributes` and :func:`expand_vectors`.
    """
    if size <= 0:
        raise ModelError(f"lookalike: size must be a positive number of personas, got {size}")
    if "persona_id" not in seed_persona_ids.columns:
        raise AudienceError("lookalike: the seed must have a persona_id column")
    if not lake.exists("customer_features"):
        raise ModelError(f"customer_features does not exist: run the features job for {snapshot_date} first")
    features = lake.read("customer_features", partitions={"snapshot_date": snapshot_date})
    attrs = validate_attributes(list(by), features.columns)
    vectors = scale_attributes(features, attrs)
    result, _ = expand_vectors(vectors, seed_persona_ids, size, config.lookalike)
    return result


def expand_audience(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    seed: str,
    size: int,
    by: list[str],
    snapshot_date: dt.date,
    name: str | None = None,
    owner: str = "segengine",
    user: str | None = None,
) -> dict[str, Any]:
    """Expand a saved audience and save the lookalike as a static audience.

    Args:
        spark: the session.
        lake: the Lake.
        config: configuration.
        seed: seed audience id or name (read with ``segengine.audiences.members``).
        size: how many lookalikes.
        by: attributes.
        snapshot_date: features partition.
        name: new audience name (default ``<seed> lookalike <size>``).
        owner: owner recorded on the audience.
        user: who asks (visibility of the seed).

    Returns:
        {"audience_id", "name", "size", "parameters"}.
    """
    from segengine import audiences

    seed_members = audiences.members(spark, lake, seed, user=user)
    if size <= 0:
        raise ModelError(f"lookalike: size must be a positive number of personas, got {size}")
    if not lake.exists("customer_features"):
        raise ModelError(f"customer_features does not exist: run the features job for {snapshot_date} first")
    features = lake.read("customer_features", partitions={"snapshot_date": snapshot_date})
    attrs = validate_attributes(list(by), features.columns)
    result, params = expand_vectors(scale_attributes(features, attrs), seed_members, size, config.lookalike)
    result = result.cache()
    name = name or f"{seed} lookalike {size}"
    definition = {
        "seed": seed,
        "attributes": attrs,
        "size": size,
        "snapshot_date": snapshot_date.isoformat(),
        "method": "bucketed_random_projection_lsh_multiprobe",
        "parameters": params,
    }
    audience_id = audiences.create_audience(
        spark,
        lake,
        config,
        name,
        owner,
        "static",
        "lookalike",
        definition,
        members=result.select("persona_id"),
        snapshot_date=snapshot_date,
    )
    return {"audience_id": audience_id, "name": name, "size": size, "parameters": params}


def add_job_args(parser: Any) -> None:
    """``jobs/lookalike.py`` options: --seed, --size, --by, --name, --owner."""
    parser.add_argument("--seed", required=True, help="Seed audience id or name")
    parser.add_argument("--size", required=True, type=int, help="Exactly how many lookalikes")
    parser.add_argument("--by", required=True, help="Comma-separated numeric catalog attributes")
    parser.add_argument("--name", default=None, help="Name of the new audience")
    parser.add_argument("--owner", default="segengine", help="Owner of the new audience")


def run_lookalike_job(ctx: Any) -> dict[str, Any]:
    """``jobs/lookalike.py``: expand ``--seed`` and save the lookalike audience."""
    a = ctx.args
    by = [b for b in a.by.split(",") if b.strip()]
    return expand_audience(
        ctx.spark, ctx.lake, ctx.config, a.seed, a.size, by, ctx.snapshot_date, name=a.name, owner=a.owner
    )
