"""Lookalike expansion: grow a seed audience by the N most similar personas (MLlib LSH).

Similarity is Euclidean distance on chosen numeric catalog attributes, each imputed
with the population mean and standardised over the population (MLlib ``Imputer`` ->
``VectorAssembler`` -> ``StandardScaler``). A candidate's distance is the distance to
its **nearest seed persona** (not to a seed centroid: a seed made of two different
groups should attract lookalikes of both).

Finding the nearest candidates without comparing every candidate with every seed
uses MLlib's ``BucketedRandomProjectionLSH`` as the hash family:

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
  are found within ``bucket_length`` of a seed, the bucket length grows ~x1.5, up to
  ``config.lookalike.max_widenings`` times. If still short (only possible with a tiny
  ``max_widenings``), the remainder is filled by distance to the seed centroid, so the
  result always has exactly N rows when the population allows it.
* **One hashing.** MLlib hashes once, at 1/8 of the first bucket length (``_fine``);
  a bucket at m x that length is ``floor(_fine / m)`` exactly, so a widening only
  regroups cached integer arrays. Vectors are spread into one column per attribute so
  every distance is plain (code-generated) arithmetic, in the exact reference too.
* **Very large seeds** (more than ``max_seed_points``) are reduced before the join to
  the mean point of each occupied grid cell whose diagonal is ``reduce_cell_share`` of
  the first bucket length: distances move by at most that much, and the probes no
  longer repeat for thousands of near-identical seeds.

Ties are broken by persona_id, so a rerun returns the same audience.
"""

from __future__ import annotations

import datetime as dt
import difflib
import itertools
import logging
from typing import TYPE_CHECKING, Any

from pyspark.ml import Pipeline
from pyspark.ml.feature import BucketedRandomProjectionLSH, Imputer, StandardScaler, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.ml.stat import Summarizer
from pyspark.sql import Column
from pyspark.sql import functions as F

from segengine import audiences
from segengine.errors import AudienceError, ModelError
from segengine.features.catalog import CATALOG
from segengine.features.snapshots import require_feature_partition

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
    if not by:
        raise ModelError(
            "lookalike: --by needs at least one numeric attribute, e.g. frequency,monetary,days_since_last_purchase"
        )
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
    assert nonnull is not None  # a global aggregate has exactly one row
    df = df.fillna({r: 0.0 for r in raw if not nonnull[r]})
    return pipeline.fit(df).transform(df).select("persona_id", VEC)


def _as_array(col: str) -> Column:
    return vector_to_array(F.col(col))


def euclidean(a: Column, b: Column) -> Column:
    """Euclidean distance of two equal-length double arrays, with built-ins."""
    sq = F.zip_with(a, b, lambda x, y: (x - y) * (x - y))
    return F.sqrt(F.aggregate(sq, F.lit(0.0), lambda acc, x: acc + x))


def _dims(vectors: DataFrame) -> int:
    """Vector length (one row to the driver)."""
    row = vectors.select(VEC).first()
    return len(row[VEC]) if row is not None else 0


def _spread(df: DataFrame, prefix: str, dims: int, keep: list[str | Column] | None = None) -> DataFrame:
    """``vec`` as one double column per dimension (``<prefix>0``..), so distances are codegen'd arithmetic."""
    arr = _as_array(VEC)
    return df.select(*(keep or []), *[arr[i].alias(f"{prefix}{i}") for i in range(dims)])


def _distance(a: str, b: str, dims: int) -> Column:
    """Euclidean distance between the spread columns ``a0..`` and ``b0..``."""
    total = F.lit(0.0)
    for i in range(dims):
        d = F.col(f"{a}{i}") - F.col(f"{b}{i}")
        total = total + d * d
    return F.sqrt(total)


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
    dims = _dims(candidates)
    s = _spread(seeds, "_s", dims)
    c = _spread(candidates, "_c", dims, ["persona_id"])
    pairs = c.crossJoin(s).select("persona_id", _distance("_c", "_s", dims).alias("distance"))
    best = pairs.groupBy("persona_id").agg(F.min("distance").alias("distance"))
    return best.orderBy("distance", "persona_id").limit(size)


# Buckets of the one MLlib hashing per bucket length of the first search: a widened
# search merges buckets (integer multiples), so it never hashes again.
HASH_DIVISIONS = 8
# Probe rows (seed points x 3^tables) up to which the probes are broadcast to the candidates.
MAX_BROADCAST_PROBES = 1_000_000


def fit_hashing(vectors: DataFrame, base: float, tables: int, seed: int) -> Any:
    """MLlib ``BucketedRandomProjectionLSH`` at the fine bucket length ``base`` (fit reads one row)."""
    lsh = BucketedRandomProjectionLSH(
        inputCol=VEC, outputCol="_hashes", bucketLength=base, numHashTables=tables, seed=seed
    )
    return lsh.fit(vectors)


def hash_fine(vectors: DataFrame, model: Any, dims: int) -> DataFrame:
    """Spread vectors plus their fine bucket ids (``_fine``, one per hash table).

    ``_fine[t] = floor(<x, u_t> / base)`` with the model's random unit vectors ``u_t``;
    the bucket at an ``m * base`` bucket length is then ``floor(_fine[t] / m)`` exactly
    (a floor of a floor), see :func:`nearest_lsh`.

    Args:
        vectors: DataFrame(persona_id, vec).
        model: from :func:`fit_hashing`.
        dims: vector length.

    Returns:
        DataFrame(persona_id, _x0.., _fine array<bigint>).
    """
    hashed = model.transform(vectors)
    # Each hash is a 1-element vector; the array keeps the table order.
    fine = F.transform("_hashes", lambda h: vector_to_array(h)[0].cast("long")).alias("_fine")
    return _spread(hashed, "_x", dims, ["persona_id", fine])


def _cell(fine: str, multiple: int) -> Column:
    """Bucket ids at ``multiple`` x the fine bucket length (floor of the real quotient)."""
    m = F.lit(float(multiple))
    return F.transform(fine, lambda b: F.floor(b / m))


def nearest_lsh(
    candidates: DataFrame, seeds: DataFrame, multiple: int, tables: int, dims: int, broadcast: bool = True
) -> DataFrame:
    """Candidates found by multi-probe LSH with their distance to the nearest probing seed.

    A cell is the tuple of a persona's bucket ids over all tables (AND); every seed
    probes its cell and all 3^tables neighbours (each id +/-1). A projection never
    lengthens a distance, so every candidate within one bucket length of a seed is found.

    Args:
        candidates: :func:`hash_fine` rows of the candidates.
        seeds: :func:`hash_fine` rows of the seeds.
        multiple: bucket length in fine buckets.
        tables: number of hash tables.
        dims: vector length.
        broadcast: ship the probes (seeds x 3^tables rows) to every task instead of
            shuffling the candidates; for up to ~1M probe rows.

    Returns:
        DataFrame(persona_id, distance): every candidate sharing a probed cell with a seed.
    """
    spark = candidates.sparkSession
    offsets = spark.createDataFrame(
        [(list(o),) for o in itertools.product((-1, 0, 1), repeat=tables)], "_off array<long>"
    )
    seed_cols = [F.col(f"_x{i}").alias(f"_s{i}") for i in range(dims)]
    probes = (
        seeds.select(_cell("_fine", multiple).alias("_home"), *seed_cols)
        .crossJoin(F.broadcast(offsets))
        .select(F.zip_with("_home", "_off", lambda a, b: a + b).alias("_cell"), *[f"_s{i}" for i in range(dims)])
    )
    cand_cols = [F.col(f"_x{i}").alias(f"_c{i}") for i in range(dims)]
    cands = candidates.select("persona_id", _cell("_fine", multiple).alias("_cell"), *cand_cols)
    pairs = cands.join(F.broadcast(probes) if broadcast else probes, "_cell")
    pairs = pairs.select("persona_id", _distance("_c", "_s", dims).alias("distance"))
    return pairs.groupBy("persona_id").agg(F.min("distance").alias("distance"))


def estimate_radius(
    candidates: DataFrame,
    seeds: DataFrame,
    size: int,
    n_candidates: int,
    n_seeds: int,
    sample_size: int,
    dims: int | None = None,
) -> float:
    """Distance within which about ``size`` candidates lie, from a sample (exact on the sample).

    About ``sample_size`` candidates against about ``2 * sample_size`` seeds (one job).
    Sampling seeds can only overestimate nearest-seed distances, so the estimate errs
    towards a wider first search rather than an extra widening.

    Returns:
        The estimated radius (> 0).
    """
    c = candidates.sample(fraction=min(1.0, sample_size / max(n_candidates, 1)), seed=17)
    s = seeds.sample(fraction=min(1.0, 2 * sample_size / max(n_seeds, 1)), seed=19)
    dims = dims or _dims(candidates)
    pairs = _spread(c, "_c", dims, ["persona_id"]).crossJoin(F.broadcast(_spread(s, "_s", dims)))
    best = pairs.groupBy("persona_id").agg(F.min(_distance("_c", "_s", dims)).alias("distance"))
    q = min(1.0, size / max(n_candidates, 1) * 1.2)
    got = best.approxQuantile("distance", [q], 0.001)
    radius = got[0] if got else 0.0
    return max(radius, 1e-3)


def reduce_seeds(seeds: DataFrame, cell_size: float) -> DataFrame:
    """Very large seeds: one representative (the mean) per grid cell of side ``cell_size``.

    Seeds in one cell are at most ``cell_size * sqrt(dims)`` apart, so a candidate's
    distance to the representative differs from its distance to the nearest of those
    seeds by at most that much.

    Args:
        seeds: DataFrame(persona_id, vec).
        cell_size: grid side in scaled units.

    Returns:
        DataFrame(persona_id, vec): one row per occupied cell (persona_id: the smallest
        seed id of the cell, for stable hashing order).
    """
    size = F.lit(float(cell_size))
    key = F.transform(_as_array(VEC), lambda x: F.floor(x / size))
    return (
        seeds.withColumn("_key", key)
        .groupBy("_key")
        .agg(F.min("persona_id").alias("persona_id"), Summarizer.mean(F.col(VEC)).alias(VEC))
        .select("persona_id", VEC)
    )


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
    if cfg.max_widenings < 0:
        raise ModelError(f"lookalike: lookalike.max_widenings must be at least 0, got {cfg.max_widenings}")
    seed_ids = seed_ids.select("persona_id").where(F.col("persona_id").isNotNull()).distinct()
    # One cached table with a seed flag; every count below is one job over it.
    flagged = (
        vectors.join(seed_ids.withColumn("_seed", F.lit(True)), "persona_id", "left")
        .select("persona_id", VEC, F.coalesce("_seed", F.lit(False)).alias("_seed"))
        .cache()
    )
    counts = flagged.agg(
        F.count(F.when(F.col("_seed"), 1)).alias("seeds"), F.count(F.when(~F.col("_seed"), 1)).alias("cands")
    ).first()
    assert counts is not None  # a global aggregate has exactly one row
    n_seed, n_cand = int(counts["seeds"]), int(counts["cands"])
    if n_seed == 0:
        flagged.unpersist()
        n_seed_ids = seed_ids.count()
        if n_seed_ids == 0:
            raise AudienceError("lookalike: the seed audience is empty")
        raise AudienceError(f"lookalike: none of the seed's {n_seed_ids} personas is in customer_features")
    if size > n_cand:
        flagged.unpersist()
        raise ModelError(
            f"lookalike: asked for {size} personas but only {n_cand} are available outside the seed "
            f"({n_seed} seed personas in a population of {n_seed + n_cand})"
        )
    seeds = flagged.where("_seed").select("persona_id", VEC)
    candidates = flagged.where(~F.col("_seed")).select("persona_id", VEC)
    dims = _dims(seeds)
    radius = estimate_radius(candidates, seeds, size, n_cand, n_seed, cfg.sample_size, dims)
    first = max(radius * 1.05, 1e-3)
    base = first / HASH_DIVISIONS
    tables = cfg.num_hash_tables
    probe_seeds, n_probe = seeds, n_seed
    if cfg.max_seed_points and n_seed > cfg.max_seed_points:
        # Representatives within reduce_cell_share x the first bucket length of their seeds.
        cell_size = first * cfg.reduce_cell_share / max(dims, 1) ** 0.5
        probe_seeds = reduce_seeds(seeds, cell_size).cache()
        n_probe = probe_seeds.count()
    hashing = fit_hashing(probe_seeds, base, tables, cfg.seed)
    hashed_c = hash_fine(candidates, hashing, dims).cache()
    hashed_s = hash_fine(probe_seeds, hashing, dims).cache()
    broadcast = n_probe * 3**tables <= MAX_BROADCAST_PROBES
    found: DataFrame | None = None
    widenings, multiple, n_found = 0, HASH_DIVISIONS, 0
    for widenings in range(cfg.max_widenings + 1):
        multiple = max(HASH_DIVISIONS, round(HASH_DIVISIONS * 1.5**widenings))
        bucket = multiple * base
        found = nearest_lsh(hashed_c, hashed_s, multiple, tables, dims, broadcast).cache()
        row = found.agg(
            F.count(F.lit(1)).alias("n"), F.count(F.when(F.col("distance") < bucket, 1)).alias("inside")
        ).first()
        assert row is not None  # a global aggregate has exactly one row
        n_found, inside = int(row["n"]), int(row["inside"])
        if inside >= size:
            break
        log.info("lookalike widening %d: %d of %d inside %.4f", widenings, inside, size, bucket)
        if widenings < cfg.max_widenings:
            found.unpersist()
    assert found is not None  # max_widenings >= 0 (checked first): the loop ran at least once
    top = found.orderBy("distance", "persona_id").limit(size)
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
        "bucket_length": multiple * base,
        "num_hash_tables": tables,
        "widenings": widenings,
        "seed_personas": n_seed,
        "seed_points": n_probe,
        "candidates": n_cand,
        "found": n_found,
        "filled_by_centroid": filled,
    }
    return top.orderBy("distance", "persona_id"), params


def _centroid(seeds: DataFrame) -> list[float]:
    row = seeds.select(Summarizer.mean(F.col(VEC)).alias("m")).first()
    assert row is not None  # a global aggregate has exactly one row
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
    require_feature_partition(lake, snapshot_date)
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
    seed_members = audiences.members(spark, lake, seed, user=user)
    if size <= 0:
        raise ModelError(f"lookalike: size must be a positive number of personas, got {size}")
    require_feature_partition(lake, snapshot_date)
    features = lake.read("customer_features", partitions={"snapshot_date": snapshot_date})
    attrs = validate_attributes(list(by), features.columns)
    result, params = expand_vectors(scale_attributes(features, attrs), seed_members, size, config.lookalike)
    result = result.cache()
    tied = largest_tie(result)
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
    out = {"audience_id": audience_id, "name": name, "size": size, "parameters": params}
    warning = tie_warning(tied, size, attrs)
    if warning:
        out["warning"] = warning
    return out


def largest_tie(result: DataFrame) -> int:
    """How many of the chosen personas share the most common distance (to 1e-9): one small aggregate."""
    row = (
        result.groupBy(F.round(F.col("distance"), 9).alias("_d"))
        .count()
        .orderBy(F.col("count").desc())
        .limit(1)
        .collect()
    )
    return int(row[0]["count"]) if row else 0


def tie_warning(tied: int, size: int, attrs: list[str]) -> str | None:
    """A warning when more than half the lookalikes sit at one distance: their attributes are
    most likely empty and imputed to one point (``recency_days`` is empty for everyone who did
    not buy in the cycle), so the choice among them is arbitrary."""
    if size <= 0 or tied * 2 <= size:
        return None
    return (
        f"{tied:,d} of the {size:,d} lookalikes ({tied / size:.0%}) are at the same distance: "
        f"{', '.join(attrs)} are probably empty for most of them (empty values are imputed with the mean); "
        "choose attributes that are set for everyone, e.g. frequency,monetary,days_since_last_purchase"
    )
