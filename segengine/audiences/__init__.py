"""Audiences: saved segments, static and dynamic membership, upload, top-N, set operations,
export and scheduled refresh; activation: destinations, holdouts and lift, overlap, history.

The public entry points are re-exported here; see each module for details.
"""

from __future__ import annotations

from segengine.audiences.derived import combine_audiences, top_n_audience
from segengine.audiences.destinations import attach, create_destination, sync_destinations
from segengine.audiences.export import export_audience
from segengine.audiences.history import audience_history, persona_history
from segengine.audiences.lift import estimate_mde, lift_report
from segengine.audiences.membership import (
    RulesEvaluator,
    apply_membership,
    compute_membership,
    create_audience,
    members_as_of,
)
from segengine.audiences.overlap import audience_overlap
from segengine.audiences.refresh import refresh_all, refresh_audience
from segengine.audiences.registry import (
    Audience,
    delete_audience,
    get_audience,
    list_audiences,
    members,
    resolver,
    set_holdout,
    set_sync,
    update_audience,
)
from segengine.audiences.setops import combine_frames
from segengine.audiences.topn import top_n_frame
from segengine.audiences.upload import upload_audience

__all__ = [
    "Audience",
    "attach",
    "audience_history",
    "audience_overlap",
    "create_destination",
    "estimate_mde",
    "lift_report",
    "persona_history",
    "set_holdout",
    "sync_destinations",
    "RulesEvaluator",
    "apply_membership",
    "combine_audiences",
    "combine_frames",
    "compute_membership",
    "create_audience",
    "members_as_of",
    "delete_audience",
    "export_audience",
    "get_audience",
    "list_audiences",
    "members",
    "refresh_all",
    "refresh_audience",
    "resolver",
    "set_sync",
    "top_n_audience",
    "top_n_frame",
    "update_audience",
    "upload_audience",
]
