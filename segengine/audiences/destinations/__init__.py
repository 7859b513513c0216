"""Destinations: send each audience's joins and leaves since the last sync.

A destination is a registry row (``destinations``: name, kind, settings, owner). An
audience is attached to one with ``attach`` (``segengine audience sync NAME
--destination DEST``): its ``synced_to`` becomes ``destination:DEST``, which locks it
against edits as every sync does. A private audience cannot be attached.

Kinds:

* ``files``: a folder per sync under ``settings.path``/<audience_id>/, named
  ``v<from>-<to>``: ``snapshot.<fmt>`` on the first sync, then ``adds.<fmt>`` and
  ``removes.<fmt>`` (CSV or Parquet, ``settings.columns``), and ``manifest.json``
  (audience, version range, row counts, sha256 of each file) written last, by an
  atomic rename: a folder without a manifest is a drop still being written.
* ``webhook``: the changes as JSON POSTs of ``settings.batch_size`` to
  ``settings.url``, each with an ``Idempotency-Key`` header (also in the body) derived
  from (destination, audience, version range, batch number), retried with
  exponential back-off (``max_retries``, ``backoff_seconds``, ``timeout_seconds``) on
  timeouts, dropped connections, 429 and 5xx. A batch that still fails is written to
  ``destination_dead_letters`` and the sync of that audience stops there: the batches
  after it wait, so a consumer never sees a member leave before it joined.
* ``delta``: a Delta table ``<path>/members`` with the members sent (one partition per
  audience, replaced on each sync) and ``<path>/changes`` with every join and leave
  and its version range; ``settings.path`` defaults to ``<warehouse>/destinations/NAME``.

Watermarks: ``destination_syncs`` has a row per sync attempt of an (audience,
destination): the ``audience_members`` versions it covers (``from_version`` is -1 for
the first, full sync), its status (``pending`` before sending, ``done``, ``failed``)
and how many webhook batches were acknowledged. The watermark is the ``to_version`` of
the latest ``done`` row. A sync after a failure (or a crash, which leaves
``pending``) first finishes the same version range from the first batch not
acknowledged, with the same idempotency keys, then catches up to the current version.
The diff is read from the two versions of ``audience_members`` (time travel), so a
watermark must stay within VACUUM's retention (``maintenance.retention_hours``).

The holdout of an audience (:mod:`segengine.audiences.holdout`) is never sent.

Modules: :mod:`.registry` (kinds, settings, the tables, create / list / delete,
``attach``), :mod:`.watermarks` (the sync log, watermarks, member diffs, batch keys),
:mod:`.webhook`, :mod:`.files` and :mod:`.delta` (one delivery each) and :mod:`.sync`
(``sync_audience``, ``sync_destinations``, the daily step).
"""

from __future__ import annotations

from segengine.audiences.destinations.delta import delta_paths
from segengine.audiences.destinations.registry import (
    FILE_FORMATS,
    FIRST_SYNC,
    KINDS,
    RETRY_STATUSES,
    SETTINGS,
    Destination,
    attach,
    attached_audiences,
    create_destination,
    dead_letters_schema,
    delete_destination,
    destinations_schema,
    ensure_tables,
    get_destination,
    list_destinations,
    syncs_schema,
)
from segengine.audiences.destinations.sync import sync_audience, sync_destinations, sync_step
from segengine.audiences.destinations.watermarks import (
    Outcome,
    batch_key,
    member_diff,
    sync_log,
    versions_to_keep,
    watermark,
)
from segengine.audiences.destinations.webhook import dead_letters

__all__ = [
    "FILE_FORMATS",
    "FIRST_SYNC",
    "KINDS",
    "RETRY_STATUSES",
    "SETTINGS",
    "Destination",
    "Outcome",
    "attach",
    "attached_audiences",
    "batch_key",
    "create_destination",
    "dead_letters",
    "dead_letters_schema",
    "delete_destination",
    "delta_paths",
    "destinations_schema",
    "ensure_tables",
    "get_destination",
    "list_destinations",
    "member_diff",
    "sync_audience",
    "sync_destinations",
    "sync_log",
    "sync_step",
    "syncs_schema",
    "versions_to_keep",
    "watermark",
]
