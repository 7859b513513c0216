"""The identity graph: identifier edges, over-merge guards, connected components.

The graph is bipartite: personas on one side, identifiers (a normalised email, phone
or cookie id) on the other, an edge for every pair seen together in bronze
(:func:`persona_edges`, :func:`event_edges`). Two personas are one person when a chain
of shared identifiers connects them.

**Why label propagation in DataFrames, not GraphFrames.** GraphFrames' connected
components is the same algorithm family (Kiveris et al.'s large-star/small-star with
checkpoints) but it is another JVM package to pin to our Spark and Scala versions,
fetch with Maven, ship to the cluster and keep in step on upgrades, for a graph that
is small after the guards: only identifiers of two or more personas link anything,
and a guarded component has at most ``identity.max_component_size`` personas, so the
propagation needs few rounds. It is a few joins and group-bys here, it runs on either
Delta backend with nothing more on the classpath, and each round is visible in plain
Spark plans.

The propagation (:func:`connected_components`): every persona starts with its own id
as label; each round an identifier takes the smallest label of its personas, a persona
the smallest label of its identifiers, then jumps to its label's label (pointer
jumping, which halves long chains). It stops when a round changes no label (one
``count`` per round, nothing collected). The labels are persisted each round and
``localCheckpoint``-ed every ``identity.checkpoint_every`` rounds (default: every
round) to cut the lineage. A round reads the previous labels four times (identifier
minimum, persona minimum, and both sides of the pointer jump), so the plan of uncut
rounds grows fourfold per round: with the cut every third round, the hand-written
tests ran the driver out of its 2 GB heap while printing a plan. A local checkpoint
lives on the executors: on a cluster that loses executors, a lost block fails the
job rather than recomputing the lost round.
"""

from __future__ import annotations

import logging

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from segengine.errors import SegengineError
from segengine.identity.normalise import email_is_valid, normalise_cookie, normalise_email, normalise_phone

log = logging.getLogger(__name__)

# Where an edge comes from: the rule that links a persona to an identifier.
RULE_EMAIL = "persona_email"
RULE_PHONE = "persona_phone"
RULE_COOKIE = "persona_cookie"
RULE_EVENT_COOKIE = "event_cookie"  # an event (a login) carrying both a persona id and a cookie

EDGE_SCHEMA = "persona_id string, id_type string, id_value string, rule string"
# How many persona ids a rejected row lists (sorted; persona_count has the number).
SAMPLE_PERSONAS = 20


class IdentityError(SegengineError):
    """The identity graph could not be built (no convergence, a bad setting)."""


def persona_edges(personas: DataFrame, default_country_code: str) -> tuple[DataFrame, DataFrame]:
    """Edges persona -> email, phone, cookie_id from the personas table, and the invalid values.

    Args:
        personas: a frame with persona_id, email, phone, cookie_id.
        default_country_code: calling code for national phone numbers.

    Returns:
        ``(edges, invalid)``: edges as :data:`EDGE_SCHEMA`; invalid as (persona_id,
        id_type, id_value (the raw text), reason) for an email or phone that does not
        normalise (reported, never silently dropped).
    """
    p = personas.where(F.col("persona_id").isNotNull())
    email = normalise_email(F.col("email"))
    phone = normalise_phone(F.col("phone"), default_country_code)
    parts = p.select(
        "persona_id",
        F.col("email").alias("raw_email"),
        email.alias("email"),
        F.col("phone").alias("raw_phone"),
        phone.alias("phone"),
        normalise_cookie(F.col("cookie_id")).alias("cookie_id"),
    )
    edges = parts.select(
        "persona_id",
        F.explode(
            F.array(
                _edge("email", F.when(email_is_valid(F.col("email")), F.col("email")), RULE_EMAIL),
                _edge("phone", F.col("phone"), RULE_PHONE),
                _edge("cookie_id", F.col("cookie_id"), RULE_COOKIE),
            )
        ).alias("e"),
    ).select("persona_id", "e.id_type", "e.id_value", "e.rule")
    edges = edges.where(F.col("id_value").isNotNull())
    blank = r"^\s*$"
    invalid = parts.select(
        "persona_id",
        F.explode(
            F.array(
                F.struct(
                    F.lit("email").alias("id_type"),
                    F.when(
                        F.col("raw_email").isNotNull()
                        & ~F.col("raw_email").rlike(blank)
                        & ~email_is_valid(F.coalesce(F.col("email"), F.lit(""))),
                        F.col("raw_email"),
                    ).alias("id_value"),
                    F.lit("invalid_email").alias("reason"),
                ),
                F.struct(
                    F.lit("phone").alias("id_type"),
                    F.when(
                        F.col("raw_phone").isNotNull() & ~F.col("raw_phone").rlike(blank) & F.col("phone").isNull(),
                        F.col("raw_phone"),
                    ).alias("id_value"),
                    F.lit("invalid_phone").alias("reason"),
                ),
            )
        ).alias("e"),
    ).select("persona_id", "e.id_type", "e.id_value", "e.reason")
    return edges, invalid.where(F.col("id_value").isNotNull())


def _edge(id_type: str, value: Column, rule: str) -> Column:
    return F.struct(F.lit(id_type).alias("id_type"), value.alias("id_value"), F.lit(rule).alias("rule"))


def event_edges(events: DataFrame, personas: DataFrame) -> DataFrame:
    """Edges persona -> cookie_id from events that carry both (logins, app sessions).

    Only personas of ``personas`` count (an event of an unknown persona id links nothing).

    Args:
        events: a frame with persona_id and cookie_id.
        personas: a frame with persona_id.

    Returns:
        Distinct edges as :data:`EDGE_SCHEMA` (rule ``event_cookie``).
    """
    cookie = normalise_cookie(F.col("cookie_id"))
    pairs = (
        events.where(F.col("persona_id").isNotNull())
        .select("persona_id", cookie.alias("id_value"))
        .where(F.col("id_value").isNotNull())
        .distinct()
    )
    known = personas.select("persona_id").where(F.col("persona_id").isNotNull())
    return pairs.join(known, "persona_id", "left_semi").select(
        "persona_id", F.lit("cookie_id").alias("id_type"), "id_value", F.lit(RULE_EVENT_COOKIE).alias("rule")
    )


def identifier_stats(edges: DataFrame) -> DataFrame:
    """Per identifier: how many personas carry it, a sorted sample of them, and the rules that saw it."""
    return edges.groupBy("id_type", "id_value").agg(
        F.countDistinct("persona_id").cast("int").alias("persona_count"),
        F.slice(F.array_sort(F.collect_set("persona_id")), 1, SAMPLE_PERSONAS).alias("personas"),
        F.array_sort(F.collect_set("rule")).alias("rules"),
    )


def connected_components(links: DataFrame, max_iterations: int, checkpoint_every: int) -> tuple[DataFrame, list[int]]:
    """Label every persona of ``links`` with the smallest persona id of its component.

    Args:
        links: (persona_id, key) pairs: persona carries identifier ``key``.
        max_iterations: rounds before giving up with :class:`IdentityError`.
        checkpoint_every: ``localCheckpoint`` the labels every this many rounds.

    Returns:
        ``(labels, changes)``: labels as (persona_id, label), persisted (the caller
        unpersists it); ``changes`` the number of labels each round changed (the last 0).

    Raises:
        IdentityError: no convergence within ``max_iterations`` rounds.
    """
    links = links.select("persona_id", "key").distinct().persist()
    labels = links.select("persona_id").distinct().select("persona_id", F.col("persona_id").alias("label")).persist()
    labels.count()
    changes: list[int] = []
    for round_no in range(1, max_iterations + 1):
        id_label = links.join(labels, "persona_id").groupBy("key").agg(F.min("label").alias("label"))
        candidate = links.join(id_label, "key").groupBy("persona_id").agg(F.min("label").alias("candidate"))
        step = labels.join(candidate, "persona_id").select("persona_id", F.least("label", "candidate").alias("label"))
        # Pointer jumping: a persona takes its label's label when smaller.
        parent = step.select(F.col("persona_id").alias("p"), F.col("label").alias("parent_label"))
        new = (
            step.join(parent, step["label"] == parent["p"], "left")
            .select("persona_id", F.least("label", F.coalesce("parent_label", "label")).alias("label"))
            .persist()
        )
        if checkpoint_every > 0 and round_no % checkpoint_every == 0:
            checkpointed = new.localCheckpoint(eager=True)
            new.unpersist()
            new = checkpointed
        changed = (
            new.alias("n").join(labels.alias("o"), "persona_id").where(F.col("n.label") != F.col("o.label")).count()
        )
        labels.unpersist()
        labels = new
        changes.append(int(changed))
        log.info("identity: round %d changed %d labels", round_no, changed)
        if changed == 0:
            links.unpersist()
            return labels, changes
    links.unpersist()
    labels.unpersist()
    raise IdentityError(
        f"identity: the components did not converge in identity.max_iterations={max_iterations} rounds "
        f"(labels changed per round: {changes}); raise it"
    )
