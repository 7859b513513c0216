"""Parse a segment document (YAML or JSON; text, file or dict) into a validated AST.

Validation is eager and complete before any Spark work: every attribute comes from the
feature catalog (read at call time, so new attributes are usable at once), every value
is checked against its attribute's type, and errors name the source, the YAML line and
the exact path, e.g. ``churn.yaml line 9: where.all[2].any[0].value: expected a number,
got string 'ten'``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from segengine.errors import SegmentDefinitionError
from segengine.rules import conditions as _conditions  # noqa: F401  (registers every kind)
from segengine.rules import sequences as _sequences  # noqa: F401  (registers sequence)
from segengine.rules.registry import Condition, ParseContext, closest, join_path, parse_condition, show

DOCUMENT_KEYS = ("name", "description", "owner", "visibility", "kind", "persona_types", "where", "top")
VISIBILITIES = ("private", "shared")
KINDS = ("static", "dynamic")
DEFAULT_PERSONA_TYPES = ("customer", "prospect", "visitor")
ORDERS = ("asc", "desc")


@dataclass(frozen=True)
class Top:
    """``top: {n: 1000, by: clv_predicted, order: desc}``; ties broken by persona_id."""

    n: int
    by: str
    order: str = "desc"


@dataclass(frozen=True)
class Segment:
    """A validated segment definition."""

    name: str
    where: Condition | None
    persona_types: tuple[str, ...] | None = None
    top: Top | None = None
    description: str | None = None
    owner: str | None = None
    visibility: str = "shared"
    kind: str = "dynamic"
    source: str = "<segment>"
    condition_count: int = 0

    @property
    def slug(self) -> str:
        """``Sales opportunity`` → ``sales_opportunity`` (how other segments refer to it)."""
        return slugify(self.name)

    def referenced_segments(self) -> list[str]:
        """Names used by ``in_segment`` / ``not_in_segment`` in this document."""
        from segengine.rules.conditions import InSegment

        if self.where is None:
            return []
        return [c.name for c in self.where.walk() if isinstance(c, InSegment)]


def slugify(name: str) -> str:
    """Lower-case, runs of non-alphanumerics → ``_``."""
    return re.sub(r"[^0-9a-z]+", "_", name.casefold()).strip("_")


# ----------------------------------------------------------------- loading


class _LineLoader(yaml.SafeLoader):
    """SafeLoader; documents are composed first so paths can be mapped to lines."""


def _index_lines(node: yaml.Node, path: str, lines: dict[str, int], source: str) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                raise SegmentDefinitionError(
                    f"{source} line {key_node.start_mark.line + 1}: {join_path(path, key)}: key given twice"
                )
            seen.add(key)
            _index_lines(value_node, join_path(path, key), lines, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, join_path(path, i), lines, source)


def load_document(text: str, source: str = "<segment>") -> tuple[Any, dict[str, int]]:
    """Parse YAML (JSON is YAML too) and return (data, {path: line})."""
    lines: dict[str, int] = {}
    try:
        loader = _LineLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None, lines
            _index_lines(node, "", lines, source)
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        # A JSON document YAML rejects (e.g. tabs) still gets a fair chance.
        try:
            return json.loads(text), lines
        except ValueError:
            pass
        mark = getattr(exc, "problem_mark", None)
        where = f"{source} line {mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise SegmentDefinitionError(f"{where}: not valid YAML/JSON: {problem}") from None
    return data, lines


def _read(doc: dict[str, Any] | str | Path) -> tuple[Any, dict[str, int], str]:
    if isinstance(doc, Mapping):
        return doc, {}, "<segment>"
    if isinstance(doc, Path) or (isinstance(doc, str) and "\n" not in doc and re.search(r"\.(ya?ml|json)$", doc)):
        path = Path(doc)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SegmentDefinitionError(f"{path}: segment file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SegmentDefinitionError(f"{path}: cannot read segment file: {exc}") from None
        data, lines = load_document(text, str(path))
        return data, lines, str(path)
    if isinstance(doc, str):
        data, lines = load_document(doc)
        return data, lines, "<segment>"
    raise SegmentDefinitionError(
        f"<segment>: expected a mapping, YAML/JSON text or a file path, got {type(doc).__name__}"
    )


# ----------------------------------------------------------------- parsing


def parse_segment(
    doc: dict[str, Any] | str | Path,
    catalog: Mapping[str, Any] | None = None,
    max_conditions: int | None = None,
) -> Segment:
    """Validate a segment document against the feature catalog.

    Args:
        doc: a mapping, YAML/JSON text, or a path to a ``.yaml``/``.yml``/``.json`` file.
        catalog: attribute name → :class:`~segengine.features.catalog.Attribute`
            (default: the live feature catalog).
        max_conditions: the most leaf conditions allowed (default ``rules.max_conditions``
            of the default configuration, 50).

    Returns:
        The validated :class:`Segment`.

    Raises:
        SegmentDefinitionError: naming the source, line and path of each problem, one
            per line in document order (``problems`` holds them as a list).
    """
    if catalog is None:
        from segengine.features import catalog as catalog_module

        catalog = catalog_module.CATALOG
    if max_conditions is None:
        from segengine.config import RulesConfig

        max_conditions = RulesConfig().max_conditions
    data, lines, source = _read(doc)
    ctx = ParseContext(catalog=catalog, max_conditions=max_conditions, source=source, lines=lines)
    if not isinstance(data, Mapping):
        raise ctx.error("", f"a segment document must be a mapping with name and where, got {show(data)}")
    # Each part is checked even when an earlier one failed: every problem is listed at once.
    for key in data:
        if key not in DOCUMENT_KEYS:
            ctx.attempt(partial(ctx.check_keys, {key: None}, "", DOCUMENT_KEYS, "a segment document"))
    name = ctx.attempt(lambda: _name(data, ctx))
    text_fields = {}
    for key in ("description", "owner"):
        if data.get(key) is not None:
            text_fields[key] = ctx.attempt(partial(ctx.string, data[key], key, non_empty=False))
    visibility = ctx.attempt(lambda: _choice(data, "visibility", VISIBILITIES, "shared", ctx))
    kind = ctx.attempt(lambda: _choice(data, "kind", KINDS, "dynamic", ctx))
    persona_types = ctx.attempt(lambda: _persona_types(data, ctx)) if data.get("persona_types") is not None else None
    where = ctx.attempt(lambda: parse_condition(data["where"], "where", ctx)) if data.get("where") is not None else None
    top = ctx.attempt(lambda: _top(data["top"], ctx)) if data.get("top") is not None else None
    ctx.raise_problems()
    assert name is not None and visibility is not None and kind is not None  # no problems: all parsed
    return Segment(
        name=name,
        where=where,
        persona_types=persona_types,
        top=top,
        visibility=visibility,
        kind=kind,
        source=source,
        condition_count=ctx.leaves,
        **text_fields,
    )


def _name(data: Mapping[str, Any], ctx: ParseContext) -> str:
    if "name" not in data:
        raise ctx.error("name", "missing segment name")
    name = ctx.string(data["name"], "name")
    if not slugify(name):
        raise ctx.error("name", f"a segment name needs at least one letter or digit, got {name!r}")
    return name


def _choice(data: Mapping[str, Any], key: str, allowed: tuple[str, ...], default: str, ctx: ParseContext) -> str:
    value = data.get(key)
    if value is None:
        return default
    if value not in allowed:
        raise ctx.error(key, f"expected one of {', '.join(allowed)}, got {show(value)}{closest(value, allowed)}")
    return str(value)


def _persona_types(data: Mapping[str, Any], ctx: ParseContext) -> tuple[str, ...]:
    attr = ctx.catalog.get("persona_type")
    allowed = tuple(getattr(attr, "allowed_values", None) or DEFAULT_PERSONA_TYPES)

    def one(value: Any, path: str) -> str:
        text = ctx.string(value, path)
        if text not in allowed:
            raise ctx.error(
                path, f"unknown persona type {text!r}{closest(text, allowed)}; expected one of: {', '.join(allowed)}"
            )
        return text

    types = ctx.one_or_many(data["persona_types"], "persona_types", one)
    return tuple(dict.fromkeys(types))


def _top(value: Any, ctx: ParseContext) -> Top:
    spec = ctx.mapping(value, "top", "{n: N, by: ATTRIBUTE, order: asc|desc}")
    ctx.check_keys(spec, "top", ("n", "by", "order"), "'top'")
    if "n" not in spec:
        raise ctx.error("top.n", "missing n (how many personas to keep)")
    n = ctx.integer(spec["n"], "top.n", minimum=1)
    if "by" not in spec:
        raise ctx.error("top.by", "missing by (the attribute to rank on)")
    attr = ctx.attribute(spec["by"], "top.by", types=("integer", "double", "date", "timestamp"))
    order = spec.get("order", "desc")
    if order not in ORDERS:
        raise ctx.error("top.order", f"expected asc or desc, got {show(order)}")
    return Top(n, attr.name, order)
