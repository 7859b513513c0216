"""Poisson bootstrap weights as Spark columns, shared by every model and report with intervals."""

from __future__ import annotations

import math

from pyspark.sql import Column
from pyspark.sql import functions as F


def _poisson1_cdf() -> list[float]:
    """P(X <= j) for X ~ Poisson(1), j = 0, 1, ... until the tail is below 1e-12."""
    cdf, total, j = [], 0.0, 0
    while 1.0 - total > 1e-12:
        total += math.exp(-1.0) / math.factorial(j)
        cdf.append(total)
        j += 1
    return cdf


def poisson_weight(persona: Column, resample: Column, seed: int) -> Column:
    """A Poisson(1) bootstrap weight per (persona, resample), a pure function of the ids and the seed.

    A uniform from ``xxhash64(persona, resample, seed)`` through the inverse CDF of
    Poisson(1): the same persona gets the same weight in the same resample whatever the
    partitioning or row order (``rand()`` would depend on both).
    """
    bits = F.pmod(F.xxhash64(persona, resample, F.lit(seed)), F.lit(2**53)).cast("double")
    uniform = bits / F.lit(float(2**53))
    weight = F.lit(0)
    for c in _poisson1_cdf():
        weight = weight + (uniform > F.lit(c)).cast("int")
    return weight
