"""The rules a Delta table declares on its rows, as Spark Columns a write must satisfy.

NOT NULL columns, column invariants, generated columns and CHECK constraints, read
from the table's schema and configuration (see ``SparkWrites._enforce``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from segengine.errors import (
    TableFeatureUnsupported,
)
from segengine.lake.deltalog.files import _arrow_schema

if TYPE_CHECKING:
    pass


# Prefix of the raise_error messages of the row checks, found again in Spark's error.
_VIOLATION_MARK = "SEGENGINE_CONSTRAINT_VIOLATION: "


def _generation_expressions(table: Any) -> dict[str, str]:
    """``{column: delta.generationExpression}`` of the table's top-level generated columns."""
    if table is None:
        return {}
    return {
        f.name: str(f.metadata["delta.generationExpression"])
        for f in table.schema().fields
        if "delta.generationExpression" in (f.metadata or {})
    }


def _sql_expr(uri: str, text: str, label: str) -> Any:
    """``F.expr(text)``; an expression Spark cannot parse refuses the write."""
    from pyspark.sql import functions as F

    try:
        return F.expr(text)
    except Exception as exc:
        raise TableFeatureUnsupported(
            f"{uri}: {label} ({text}) is not a Spark SQL expression; refusing to write"
        ) from exc


def _table_rules(uri: str, table: Any) -> list[tuple[str, Any]]:
    """``(label, Column that must be true)`` for every rule the table declares on its rows.

    NOT NULL (a nested struct field only where its parent is not null), column
    invariants, generated columns and CHECK constraints. Rules inside arrays or maps
    cannot be checked with a column expression and refuse the write.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    if table is None:
        return []
    rules: list[tuple[str, Any]] = []
    spark_types = {f.name: f.dataType for f in from_arrow_schema(_arrow_schema(table.schema())).fields}

    def visit(fields: list[Any], path: list[str], parent: Any) -> None:
        for field in fields:
            names = path + [field.name]
            shown = ".".join(names)
            col = F.col(".".join(f"`{n.replace('`', '``')}`" for n in names))
            meta = field.metadata or {}
            if not field.nullable:
                ok = col.isNotNull() if parent is None else (parent.isNull() | col.isNotNull())
                rules.append((f"NOT NULL column {shown}", ok))
            if "delta.invariants" in meta:
                raw = meta["delta.invariants"]
                text = (json.loads(raw) if isinstance(raw, str) else raw)["expression"]["expression"]
                rules.append((f"invariant on {shown} ({text})", _sql_expr(uri, text, f"invariant on {shown}")))
            if "delta.generationExpression" in meta and not path:
                text = str(meta["delta.generationExpression"])
                expected = _sql_expr(uri, text, f"generated column {shown}").cast(spark_types[field.name])
                rules.append((f"generated column {shown} ({text})", col.eqNullSafe(expected)))
            kind = json.loads(field.type.to_json()) if hasattr(field.type, "to_json") else None
            if isinstance(kind, dict) and kind.get("type") == "struct":
                visit(list(field.type.fields), names, col)
            elif isinstance(kind, dict) and kind.get("type") in {"array", "map"}:
                text = json.dumps(kind)
                if "delta.invariants" in text or "delta.generationExpression" in text:
                    raise TableFeatureUnsupported(
                        f"{uri}: column {shown} declares a rule inside an {kind['type']}; the embedded backend "
                        "cannot check it and refuses to write"
                    )

    visit(list(table.schema().fields), [], None)
    config = table.metadata().configuration or {}
    for key in sorted(config):
        if key.startswith("delta.constraints."):
            name = key[len("delta.constraints.") :]
            text = str(config[key])
            rules.append((f"CHECK constraint {name} ({text})", _sql_expr(uri, text, f"CHECK constraint {name}")))
    return rules
