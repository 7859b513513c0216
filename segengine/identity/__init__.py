"""Identity stitching: one person from the personas that share an email, phone or cookie.

:func:`build_identity_map` (``segengine identity build --date``, ``jobs/build_identity.py``)
builds the identity graph from bronze (:mod:`segengine.identity.graph`), cuts the
identifiers and components that would over-merge, and writes ``identity_map``
(identifier and persona id -> canonical person id) and ``identity_rejected`` (what was
not merged, with the reason). Normalisation rules are in
:mod:`segengine.identity.normalise`. See docs/identity.md.

Features, rules, audiences and recommendations do not read the map yet: they still
work per persona.
"""

from __future__ import annotations

from segengine.identity.build import MAP_COLUMNS, REJECTED_COLUMNS, build_identity_map, stitch, summarise
from segengine.identity.graph import IdentityError, connected_components

__all__ = [
    "MAP_COLUMNS",
    "REJECTED_COLUMNS",
    "IdentityError",
    "build_identity_map",
    "connected_components",
    "stitch",
    "summarise",
]
