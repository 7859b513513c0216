"""Pairwise precision and recall of a stitching against known people (planted truth).

A *pair* is two personas put in one person. Precision is the share of the predicted
pairs that are true, recall the share of the true pairs that were predicted. Both are
counted by aggregation (n x (n - 1) / 2 per group), never by a self-join.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segengine.frames import one_row


def _pairs(df: DataFrame, *keys: str) -> int:
    n = df.groupBy(*keys).agg(F.count(F.lit(1)).alias("n"))
    value = one_row(n.agg(F.sum(F.col("n") * (F.col("n") - 1) / 2).alias("pairs")))["pairs"]
    return int(value or 0)


def pairwise_scores(persons: DataFrame, truth: DataFrame) -> dict[str, Any]:
    """Compare predicted persons with the true ones.

    Args:
        persons: (persona_id, person_id) predicted, one row per persona.
        truth: (persona_id, person_id) for the personas of known multi-persona people;
            a persona missing from it is its own person.

    Returns:
        ``{"precision", "recall", "predicted_pairs", "true_pairs", "correct_pairs"}``
        (precision 1.0 without predicted pairs, recall 1.0 without true pairs).
    """
    known = truth.select("persona_id", F.col("person_id").alias("true_id"))
    both = (
        persons.select("persona_id", F.col("person_id").alias("pred_id"))
        .join(known, "persona_id", "left")
        .select("persona_id", "pred_id", F.coalesce("true_id", "persona_id").alias("true_id"))
        .persist()
    )
    predicted, true, correct = _pairs(both, "pred_id"), _pairs(both, "true_id"), _pairs(both, "pred_id", "true_id")
    both.unpersist()
    return {
        "precision": correct / predicted if predicted else 1.0,
        "recall": correct / true if true else 1.0,
        "predicted_pairs": predicted,
        "true_pairs": true,
        "correct_pairs": correct,
    }
