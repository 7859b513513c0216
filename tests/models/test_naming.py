"""Naming and matching logic on small hand-made centroids (pure Python, exact answers)."""

from __future__ import annotations

import math

from segengine.models.naming import ARCHETYPES, assignment, match_names, name_clusters, rfmt_scores


def _p(recency, frequency, monetary, tenure):
    # The model's unscaled feature space: log1p of frequency and monetary.
    return (float(recency), math.log1p(frequency), math.log1p(monetary), float(tenure))


CHAMPIONS = _p(10, 20, 3000, 800)
NEW = _p(15, 1, 60, 20)
AT_RISK = _p(200, 12, 1500, 900)
LOST = _p(500, 1.5, 40, 600)


def test_rank_scores_put_most_recent_and_biggest_spender_at_one():
    scores = rfmt_scores([CHAMPIONS, NEW, AT_RISK, LOST])
    assert scores[0] == (1.0, 1.0, 1.0, 2 / 3)
    assert scores[3][0] == 0.0  # least recent
    assert scores[1][3] == 0.0  # shortest tenure


def test_tied_values_share_the_average_rank():
    scores = rfmt_scores([_p(10, 1, 5, 5), _p(10, 2, 5, 6), _p(30, 3, 5, 7)])
    assert [s[0] for s in scores] == [0.75, 0.75, 0.0]
    assert [s[2] for s in scores] == [0.5, 0.5, 0.5]


def test_four_textbook_centroids_get_their_textbook_names():
    assert name_clusters([CHAMPIONS, NEW, AT_RISK, LOST]) == ["Champions", "New", "At risk", "Lost"]


def test_names_do_not_depend_on_cluster_order():
    assert name_clusters([LOST, AT_RISK, CHAMPIONS, NEW]) == ["Lost", "At risk", "Champions", "New"]


def test_two_clusters_are_champions_and_lost():
    assert name_clusters([LOST, CHAMPIONS]) == ["Lost", "Champions"]


def test_more_clusters_than_archetypes_get_unique_numbered_names():
    profiles = [_p(10 * i, i, 100 * i, 50 * i) for i in range(1, 13)]
    names = name_clusters(profiles)
    assert len(set(names)) == 12
    assert set(ARCHETYPES) < set(names)
    assert {"Segment 1", "Segment 2"} == set(names) - set(ARCHETYPES)


def test_assignment_minimises_total_cost_not_greedy_choice():
    # Greedy row-by-row would give row 0 column 0 (1) and row 1 column 1 (100): 101.
    assert assignment([[1, 2], [3, 100]]) == [(0, 1), (1, 0)]


def test_matching_follows_the_centroid_not_the_cluster_index():
    previous = [CHAMPIONS, NEW, AT_RISK, LOST]
    previous_names = ["Champions", "New", "At risk", "Lost"]
    # Same clusters, renumbered and slightly moved by a retrain.
    moved = [_p(505, 1.4, 42, 610), _p(9, 21, 2900, 790), _p(16, 1, 58, 22), _p(190, 11, 1600, 880)]
    assert match_names(moved, previous, previous_names, scale=[100, 1, 1, 300]).names == [
        "Lost",
        "Champions",
        "New",
        "At risk",
    ]


def test_matching_keeps_custom_previous_names_even_if_rule_would_differ():
    previous_names = ["VIP", "Fresh", "Slipping", "Gone"]
    names = match_names([LOST, CHAMPIONS], [CHAMPIONS, NEW, AT_RISK, LOST], previous_names).names
    assert names == ["Gone", "VIP"]


def test_a_new_extra_cluster_gets_a_free_rule_name():
    previous = [CHAMPIONS, LOST]
    names = match_names([CHAMPIONS, NEW, LOST], previous, ["Champions", "Lost"], scale=[100, 1, 1, 300]).names
    assert names[0] == "Champions" and names[2] == "Lost"
    assert names[1] not in {"Champions", "Lost"} and names[1] in ARCHETYPES


SCALE = [100, 1, 1, 300]


def test_names_within_the_guard_are_carried_over_with_their_distance():
    previous = [CHAMPIONS, NEW, AT_RISK, LOST]
    moved = [_p(505, 1.4, 42, 610), _p(9, 21, 2900, 790), _p(16, 1, 58, 22), _p(190, 11, 1600, 880)]
    matched = match_names(moved, previous, ["Champions", "New", "At risk", "Lost"], SCALE, max_distance=1.0)
    assert matched.names == ["Lost", "Champions", "New", "At risk"]
    assert matched.renamed == []
    assert set(matched.distances) == {0, 1, 2, 3} and max(matched.distances.values()) < 0.2


def test_a_cluster_that_drifted_past_the_guard_is_renamed_from_its_profile():
    """After drift the cluster paired with the old Champions centroid now holds lapsed,
    low-spend customers: without the guard it would still be called Champions."""
    previous = [CHAMPIONS, NEW, AT_RISK, LOST]
    names = ["Champions", "New", "At risk", "Lost"]
    drifted = [_p(420, 1.2, 35, 700), NEW, AT_RISK, LOST]  # a second lapsed group
    unguarded = match_names(drifted, previous, names, SCALE)
    assert unguarded.names[0] == "Champions"

    guarded = match_names(drifted, previous, names, SCALE, max_distance=1.0)
    assert guarded.names[1:] == ["New", "At risk", "Lost"]
    assert guarded.names[0] not in {"Champions", "New", "At risk", "Lost"} and guarded.names[0] in ARCHETYPES
    (rename,) = guarded.renamed
    assert (rename.index, rename.previous_name, rename.name) == (0, "Champions", guarded.names[0])
    assert rename.distance > 1.0
    # The guard's distance is in scaled units: 4 dims, recency 410 days / 100 = 4.1 alone.
    assert math.isclose(rename.distance, match_names(drifted, previous, names, SCALE).distances[0])
