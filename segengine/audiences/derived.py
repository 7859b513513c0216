"""Audiences made from other audiences, saved as new audiences: set operations and top-N.

The member frames are computed by :mod:`segengine.audiences.setops` and
:mod:`segengine.audiences.topn`, which :mod:`segengine.audiences.membership` also uses
to refresh a dynamic one; the audience is saved through
:func:`~segengine.audiences.membership.create_audience`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from segengine.audiences.membership import create_audience
from segengine.audiences.registry import get_audience, stored_members
from segengine.audiences.setops import OPERATIONS, combine_frames
from segengine.audiences.topn import check_top_n, top_n_frame
from segengine.errors import AudienceError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from segengine.config import Config
    from segengine.lake import Lake


def combine_audiences(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    op: str,
    audiences: list[str],
    name: str,
    owner: str,
    kind: str = "static",
    visibility: str = "shared",
    snapshot_date: dt.date | None = None,
    evaluator=None,
) -> str:
    """Save ``op`` over ``audiences`` (ids or names ``owner`` may use) as a new audience.

    A static result is materialised now from the operands' current membership; a
    dynamic one stores ``{"op", "audiences": [ids]}`` and is recomputed on refresh.

    Returns:
        The new audience_id.
    """
    if op not in OPERATIONS:
        raise AudienceError(f"unknown set operation {op!r}: expected one of {', '.join(OPERATIONS)}")
    ids = [get_audience(spark, lake, a, owner).audience_id for a in audiences]
    definition = {"op": op, "audiences": ids}
    members = None
    if kind == "static":
        members = combine_frames(op, [stored_members(lake, i) for i in ids])
    return create_audience(
        spark,
        lake,
        config,
        name,
        owner,
        kind,
        "set_operation",
        definition,
        members=members,
        visibility=visibility,
        snapshot_date=snapshot_date,
        evaluator=evaluator,
    )


def top_n_audience(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    source: str,
    n: int,
    by: str,
    order: str,
    name: str,
    owner: str,
    kind: str = "static",
    visibility: str = "shared",
    snapshot_date: dt.date | None = None,
    evaluator=None,
) -> str:
    """Save the top ``n`` of audience ``source`` by ``by`` as a new audience.

    Returns:
        The new audience_id.
    """
    check_top_n(n, by, order)
    if snapshot_date is None:
        raise AudienceError("top-N needs a snapshot date (which features to rank by)")
    src = get_audience(spark, lake, source, owner)
    definition = {"from": src.audience_id, "n": n, "by": by, "order": order}
    members = None
    if kind == "static":
        members = top_n_frame(lake, stored_members(lake, src.audience_id), n, by, order, snapshot_date)
    return create_audience(
        spark, lake, config, name, owner, kind, "top_n", definition, members, visibility, snapshot_date, evaluator
    )
