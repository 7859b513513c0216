"""Contract validation as DataFrame → DataFrame functions (Spark built-ins only).

Input: the raw columns of one bronze table as strings, plus ``_corrupt_record``,
``_source_file`` and ``_row``. Output: the typed contract columns, the derived ones,
``_raw`` (the record as the file had it) and ``_reason`` (null for a good row, else
every problem of the row joined with ``"; "``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from segengine.contract import TableContract

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

CORRUPT = "_corrupt_record"
SOURCE = "_source_file"
ROW = "_row"
RAW = "_raw"
REASON = "_reason"


def _clean(name: str) -> Column:
    """Trimmed text, empty → null; emails lower-cased (the contract says so)."""
    from pyspark.sql import functions as F

    value = F.trim(F.col(name).cast("string"))
    value = F.when(value != "", value)
    return F.lower(value) if name == "email" else value


def normalise(df: DataFrame, tc: TableContract) -> DataFrame:
    """Keep the raw record as JSON in ``_raw``, then replace each column by its cleaned text.

    Args:
        df: raw string columns plus ``_corrupt_record``, ``_source_file``, ``_row``.
        tc: the table's contract.

    Returns:
        The same columns, cleaned, plus ``_raw``.
    """
    from pyspark.sql import functions as F

    names = [c.name for c in tc.columns]
    raw = F.coalesce(F.col(CORRUPT), F.to_json(F.struct(*[F.col(n) for n in names])))
    return df.select(*[_clean(n).alias(n) for n in names], CORRUPT, SOURCE, ROW, raw.alias(RAW))


def check_rows(df: DataFrame, tc: TableContract) -> DataFrame:
    """Type every column with ``try_cast`` and compute ``_reason`` from the contract.

    Args:
        df: output of :func:`normalise`.
        tc: the table's contract.

    Returns:
        Typed contract columns, ``_source_file``, ``_row``, ``_raw``, ``_reason``.
    """
    from pyspark.sql import functions as F

    checks: list[Column] = []
    typed: dict[str, Column] = {}
    for spec in tc.columns:
        text = F.col(spec.name)
        value = text if spec.type == "string" else text.try_cast(spec.type)
        typed[spec.name] = value
        if spec.required:
            checks.append(F.when(text.isNull(), F.lit(f"missing required field {spec.name}")))
        if spec.type != "string":
            checks.append(F.when(text.isNotNull() & value.isNull(), F.lit(f"invalid {spec.type} in {spec.name}")))
        if spec.allowed:
            allowed = ", ".join(spec.allowed)
            checks.append(
                F.when(value.isNotNull() & ~value.isin(*spec.allowed), F.lit(f"{spec.name} is not one of {allowed}"))
            )
        if spec.min_value is not None:
            checks.append(
                F.when(value < F.lit(spec.min_value), F.lit(f"{spec.name} is below the minimum {spec.min_value:g}"))
            )
        if spec.nonzero:
            checks.append(F.when(value == F.lit(0), F.lit(f"{spec.name} must not be zero")))
        if spec.pattern:
            checks.append(
                F.when(value.isNotNull() & ~value.rlike(spec.pattern), F.lit(f"{spec.name} is not a valid {spec.name}"))
            )
    if tc.one_of:
        none = F.lit(True)
        for name in tc.one_of:
            none = none & F.col(name).isNull()
        checks.append(F.when(none, F.lit(f"needs at least one of {', '.join(tc.one_of)}")))
    problems = F.concat_ws("; ", F.array_compact(F.array(*checks)))
    # An unparseable line yields null columns; its only reason is that it did not parse.
    reason = F.when(F.col(CORRUPT).isNotNull(), F.lit("unparseable record")).otherwise(F.when(problems != "", problems))
    return df.select(*[v.alias(k) for k, v in typed.items()], SOURCE, ROW, RAW, reason.alias(REASON))


def check_across(df: DataFrame, tc: TableContract) -> DataFrame:
    """Apply the contract's row checks across columns (``closed_at`` before ``opened_at``,
    a score outside its survey kind's range) to the typed rows, adding to ``_reason``.

    Args:
        df: output of :func:`check_rows`.
        tc: the table's contract (its ``checks``).

    Returns:
        ``df`` with each failed check's reason appended to ``_reason``.
    """
    from pyspark.sql import functions as F

    if not tc.checks:
        return df
    # The contract's own SQL over typed values; a null operand fails no check.
    failed = [F.when(F.coalesce(F.expr(cond), F.lit(False)), F.lit(reason)) for cond, reason in tc.checks]
    extra = F.concat_ws("; ", F.array_compact(F.array(*failed)))
    unparsed = F.col(REASON) == F.lit("unparseable record")
    merged = F.when(
        (extra != "") & ~F.coalesce(unparsed, F.lit(False)),
        F.concat_ws("; ", F.col(REASON), extra),
    ).otherwise(F.col(REASON))
    return df.withColumn(REASON, merged)


def flag_duplicates(df: DataFrame, tc: TableContract) -> DataFrame:
    """Among otherwise good rows, every repeat of a key after its first (by file, row) is rejected.

    Args:
        df: output of :func:`check_rows`.
        tc: the table's contract (its ``key``).

    Returns:
        ``df`` with ``_reason`` set on the repeats.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ok = F.col(REASON).isNull()
    window = Window.partitionBy(*[F.col(k) for k in tc.key], ok).orderBy(SOURCE, ROW)
    dup = ok & (F.row_number().over(window) > 1)
    msg = F.lit(f"duplicate key ({', '.join(tc.key)}) within this load; the first occurrence was kept")
    return df.withColumn(REASON, F.when(dup, msg).otherwise(F.col(REASON)))


def add_derived(df: DataFrame, tc: TableContract) -> DataFrame:
    """Add the contract's derived columns (e.g. ``event_date`` from ``event_ts``)."""
    from pyspark.sql import functions as F

    for name, expr in tc.derived:
        df = df.withColumn(name, F.expr(expr))
    return df


def validate(df: DataFrame, tc: TableContract) -> DataFrame:
    """Normalise, type, check, flag duplicates, derive: the whole contract check.

    Args:
        df: raw string columns plus ``_corrupt_record``, ``_source_file``, ``_row``.
        tc: the table's contract.

    Returns:
        Typed bronze columns plus ``_source_file``, ``_row``, ``_raw``, ``_reason``.
    """
    return (
        df.transform(lambda d: normalise(d, tc))
        .transform(lambda d: check_rows(d, tc))
        .transform(lambda d: check_across(d, tc))
        .transform(lambda d: flag_duplicates(d, tc))
        .transform(lambda d: add_derived(d, tc))
    )
