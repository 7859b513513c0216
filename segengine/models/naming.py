"""Human names for k-means clusters, and keeping them stable across retrains.

Two pure-Python steps over a handful of centroids (never over customers):

1. :func:`name_clusters` gives each cluster an RFM-style name from its centroid's
   *unscaled* RFMT profile. The rule is rank based, so it does not depend on the
   currency or the length of the history:

   * per dimension the clusters are ranked and the ranks mapped to a score in
     [0, 1] (ties share the average rank); recency is reversed so 1 = most recent,
     frequency, monetary and tenure score 1 for the highest value;
   * each name in :data:`ARCHETYPES` is a prototype point (R, F, M, T) in that score
     space (Champions = recent, frequent, high spend; Lost = least recent, least
     frequent, lowest spend; …);
   * clusters are assigned to distinct archetypes by minimum total Euclidean
     distance (Hungarian assignment), so two clusters never share a name. With more
     clusters than archetypes the rest are called ``Segment <n>``.

2. :func:`match_names` carries names over from the previous champion model: the new
   centroids are matched one-to-one to the previous model's named centroids by
   minimum total distance (Hungarian assignment, per-dimension scaled), and take
   their names. So a customer's segment name changes only when the customer's
   behaviour moves them to another cluster, not because k-means numbered its
   clusters differently or the rank rule would now read a centroid differently.

   **The guard**: a name is carried over only when the matched previous centroid is
   within ``max_distance`` of the new one, in the scaled space (per dimension divided
   by the new scaler's standard deviation, so 1.0 = one standard deviation of the
   customers along one axis; ``segments.name_max_distance``). The assignment is one
   to one and always pairs every cluster, so without it a cluster that drifted far
   (or a population that changed) would inherit "Champions" whatever it now holds.
   A cluster past the guard, and a new cluster left over when k grew, is named by
   the rule from its own profile among the archetypes not carried over; the renames
   are returned (:class:`NameMatch`) for the training report and the log.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

# (recency score, frequency score, monetary score, tenure score); 1 = most recent /
# most frequent / highest spend / longest tenure. Order = preference when k is small
# and several archetypes are equally close.
ARCHETYPES: dict[str, tuple[float, float, float, float]] = {
    "Champions": (1.0, 1.0, 1.0, 0.7),
    "Loyal": (0.7, 0.8, 0.8, 0.8),
    "Potential loyalists": (0.85, 0.5, 0.5, 0.4),
    "New": (1.0, 0.0, 0.2, 0.0),
    "Promising": (0.7, 0.35, 0.35, 0.35),
    "Need attention": (0.5, 0.5, 0.5, 0.5),
    "At risk": (0.3, 0.7, 0.7, 0.8),
    "Can't lose them": (0.1, 0.95, 0.95, 1.0),
    "Hibernating": (0.35, 0.3, 0.3, 0.5),
    "Lost": (0.0, 0.0, 0.0, 0.5),
}


def assignment(cost: Sequence[Sequence[float]]) -> list[tuple[int, int]]:
    """Minimum-cost one-to-one assignment of rows to columns (Hungarian method).

    Args:
        cost: a rows × columns matrix (rectangular allowed).

    Returns:
        ``(row, column)`` pairs, ``min(rows, columns)`` of them, sorted by row.
    """
    if not cost or not cost[0]:
        return []
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment([list(r) for r in cost])
    return sorted(zip((int(r) for r in rows), (int(c) for c in cols), strict=True))


def _rank_scores(values: Sequence[float], higher_is_better: bool) -> list[float]:
    n = len(values)
    if n == 1:
        return [0.5]
    order = sorted(range(n), key=lambda i: values[i])
    ranks = [0.0] * n
    i = 0
    while i < n:  # average ranks for ties
        j = i
        while j + 1 < n and values[order[j + 1]] == values[order[i]]:
            j += 1
        for m in range(i, j + 1):
            ranks[order[m]] = (i + j) / 2
        i = j + 1
    scores = [r / (n - 1) for r in ranks]
    return scores if higher_is_better else [1.0 - s for s in scores]


def rfmt_scores(profiles: Sequence[Sequence[float]]) -> list[tuple[float, float, float, float]]:
    """Rank scores in [0, 1] per cluster for (recency, frequency, monetary, tenure).

    Args:
        profiles: per cluster ``(recency_days, frequency, monetary, tenure_days)``
            (any monotone transform of them gives the same scores).

    Returns:
        Per cluster ``(R, F, M, T)``; R = 1 for the most recent cluster.
    """
    cols = list(zip(*profiles, strict=True)) if profiles else [(), (), (), ()]
    r = _rank_scores(cols[0], higher_is_better=False)
    f = _rank_scores(cols[1], higher_is_better=True)
    m = _rank_scores(cols[2], higher_is_better=True)
    t = _rank_scores(cols[3], higher_is_better=True)
    return list(zip(r, f, m, t, strict=True))


def _dist(a: Sequence[float], b: Sequence[float], scale: Sequence[float] | None = None) -> float:
    scale = scale or [1.0] * len(a)
    return math.sqrt(sum(((x - y) / (s or 1.0)) ** 2 for x, y, s in zip(a, b, scale, strict=True)))


def name_clusters(
    profiles: Sequence[Sequence[float]],
    only: Sequence[int] | None = None,
    taken: Sequence[str] = (),
) -> list[str | None]:
    """Name clusters by the rank rule (see module docstring).

    Args:
        profiles: per cluster ``(recency_days, frequency, monetary, tenure_days)``.
        only: name just these cluster indices (others get None); scores are still
            ranked among all clusters.
        taken: archetype names not to use (already carried over).

    Returns:
        One name per cluster (None for clusters outside ``only``).
    """
    k = len(profiles)
    indices = list(range(k)) if only is None else list(only)
    scores = rfmt_scores(profiles)
    free = [n for n in ARCHETYPES if n not in set(taken)]
    cost = [[_dist(scores[i], ARCHETYPES[n]) for n in free] for i in indices]
    names: list[str | None] = [None] * k
    for row, col in assignment(cost):
        names[indices[row]] = free[col]
    used = set(taken) | {n for n in names if n}
    counter = 1
    for i in indices:
        if names[i] is None:
            while f"Segment {counter}" in used:
                counter += 1
            name = f"Segment {counter}"
            names[i] = name
            used.add(name)
    return names


@dataclass(frozen=True)
class Rename:
    """A new cluster that did not inherit the name of the previous centroid it was paired
    with, because that centroid was farther than the guard."""

    index: int
    previous_name: str
    name: str
    distance: float


@dataclass(frozen=True)
class NameMatch:
    """:func:`match_names`' answer: one name per new cluster, the renames past the guard,
    and the scaled distance of each carried-over name (by cluster index)."""

    names: list[str]
    renamed: list[Rename] = field(default_factory=list)
    distances: dict[int, float] = field(default_factory=dict)


def match_names(
    profiles: Sequence[Sequence[float]],
    previous_profiles: Sequence[Sequence[float]],
    previous_names: Sequence[str],
    scale: Sequence[float] | None = None,
    max_distance: float | None = None,
) -> NameMatch:
    """Carry the previous model's names over to the new clusters, within the guard.

    Args:
        profiles: new clusters' centroids in the model's unscaled feature space.
        previous_profiles: the previous champion's centroids, same space.
        previous_names: the previous champion's names, aligned with its centroids.
        scale: per-dimension divisor making dimensions comparable (e.g. the new
            scaler's standard deviations); None = unscaled distance.
        max_distance: carry a name over only when the paired centroids are at most
            this far apart (scaled); None = always (no guard).

    Returns:
        A :class:`NameMatch`: per new cluster the carried-over name, or a rule name from
        the archetypes not carried over; the renames past the guard.
    """
    cost = [[_dist(p, q, scale) for q in previous_profiles] for p in profiles]
    names: list[str | None] = [None] * len(profiles)
    paired: dict[int, tuple[str, float]] = {}
    for row, col in assignment(cost):
        paired[row] = (previous_names[col], cost[row][col])
        if max_distance is None or cost[row][col] <= max_distance:
            names[row] = previous_names[col]
    left = [i for i, n in enumerate(names) if n is None]
    if left:
        fresh = name_clusters(profiles, only=left, taken=[n for n in names if n])
        for i in left:
            names[i] = fresh[i]
    renamed = [
        Rename(i, paired[i][0], str(names[i]), round(paired[i][1], 3))
        for i in left
        if i in paired and names[i] != paired[i][0]
    ]
    carried = {i: round(paired[i][1], 3) for i in paired if i not in left}
    return NameMatch([str(n) for n in names], renamed, carried)
