"""The package's layers stay one-way and its modules free of import cycles (AST only, no Spark).

Every ``import`` of a ``segengine`` module is read from the source, at the top of a file,
inside a function or under ``if TYPE_CHECKING:``, and checked against :data:`LAYERS`:
a module may import its own layer and the layers below it, never one above. Import
cycles between modules (and between the top-level packages) are found from the same
imports, leaving out the ``TYPE_CHECKING`` ones, which never run. What is wrong today
and outside this change is listed, each with its reason, in :data:`KNOWN_VIOLATIONS`,
:data:`KNOWN_CYCLES` and :data:`KNOWN_JOB_ADAPTERS`; anything new fails, and so does an
entry that no longer happens (delete it). CONTRIBUTING.md draws the same map.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "segengine"

# Bottom to top. A unit is a top-level module or package of segengine ("segengine" is the
# package's own __init__). Units on one line are peers: they may import each other, as
# long as no cycle forms between them.
LAYERS: list[tuple[str, ...]] = [
    (
        "errors",
        "dates",
        "codes",
        "bootstrap",
        "frames",
    ),  # plain helpers: exceptions, dates, enum codes, bootstrap weights, one_row
    ("config",),  # the one typed Config, loaded from YAML
    ("session",),  # builds the SparkSession from the config
    ("lake", "contract"),  # Delta storage; the bronze tables' contract (schemas, readers)
    # identity: personas -> canonical persons (bronze -> identity_map); a peer of features so
    # features may read the map, and it reuses their local-date helper.
    ("ingest", "features", "identity"),  # raw files -> bronze; bronze -> customer_features
    ("generate", "rules"),  # sample data (writes raw files, then ingests); segment rules over features
    ("models", "insights", "audiences"),  # capabilities over features and rules
    ("pipeline",),  # steps, jobs' adapters, the daily run
    ("cli", "studio", "workspace", "packaging", PACKAGE),  # entry points: commands, the studio, the notebook facade
]

# (importing module, imported module) -> why it is allowed for now.
KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {}


# Modules that import each other -> why it is allowed for now.
KNOWN_CYCLES: dict[frozenset[str], str] = {}

# The features flow, in the order a snapshot date goes through it (docs/features.md draws
# it): a module may import the helpers and the modules of earlier entries only, so a
# stage never calls back up. Entries on one line are peers that do not import each other.
FEATURE_HELPERS = ("windows", "money", "catalog", "snapshots")  # dates, money, the catalog, input checks
FEATURE_STAGES: list[tuple[str, ...]] = [
    ("bronze",),  # 1 bronze readers: local dates, rows cut to the days, events to their persona
    ("rfmt", "behaviour"),  # 2 per-persona daily facts of orders and of events
    ("state",),  # 3 window state: rebuilt from the whole history or advanced from an earlier date
    ("profile", "support"),  # 4 parts of the feature table read from bronze: profiles, extras
    ("table",),  # 4 the feature table: the parts joined, one row per persona
    ("tiers",),  # 5 value tier, behaviour state, lifecycle stage
    ("scores",),  # 5 engagement and fit (fit needs the value tier)
    ("output",),  # 6 conform to the catalog, write
    ("refresh",),  # the planner: full or incremental, decided once before the run
    ("build",),  # the full recompute without writing (build_features)
    ("compute",),  # the run: plan, then the stages in order (compute_features)
    ("",),  # segengine.features itself: the public entry points
]

# Job adapters (``run_*_job``) outside segengine.pipeline -> why they are still there.
KNOWN_JOB_ADAPTERS: dict[str, str] = {}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    kind: str  # "top", "function" or "type" (under TYPE_CHECKING)


def sources(root: Path = ROOT) -> dict[str, str]:
    """Module name -> source text of every file of the package."""
    out = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path.read_text(encoding="utf-8")
    return out


@functools.cache
def _parse(text: str) -> ast.Module:
    return ast.parse(text)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, is_package: bool, node: ast.ImportFrom, known: set[str]) -> list[str]:
    if node.level:
        base_parts = module.split(".") if is_package else module.split(".")[:-1]
        base_parts = base_parts[: len(base_parts) - (node.level - 1)]
        base = ".".join([*base_parts, *([node.module] if node.module else [])])
    else:
        base = node.module or ""
    if base != PACKAGE and not base.startswith(PACKAGE + "."):
        return []
    # ``from segengine.features import behaviour`` imports the submodule when there is one.
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]


def imports(srcs: dict[str, str], known: set[str] | None = None) -> list[Import]:
    """Every import of a segengine module in ``srcs``, with where it sits (``known``: all module names)."""
    known = set(srcs) if known is None else known
    found: list[Import] = []
    for module, text in srcs.items():
        tree = _parse(text)
        is_package = module == PACKAGE or any(m.startswith(module + ".") for m in known)

        def visit(node: ast.AST, kind: str, module: str = module, is_package: bool = is_package) -> None:
            for child in ast.iter_child_nodes(node):
                child_kind = kind
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                    child_kind = "function" if kind == "top" else kind
                elif isinstance(child, ast.If) and _is_type_checking(child):
                    for sub in child.body:
                        visit(ast.Module(body=[sub], type_ignores=[]), "type")
                    for sub in child.orelse:
                        visit(ast.Module(body=[sub], type_ignores=[]), kind)
                    continue
                targets: list[str] = []
                if isinstance(child, ast.Import):
                    targets = [a.name for a in child.names if a.name == PACKAGE or a.name.startswith(PACKAGE + ".")]
                elif isinstance(child, ast.ImportFrom):
                    targets = _resolve(module, is_package, child, known)
                for target in targets:
                    while target not in known and "." in target:
                        target = target.rsplit(".", 1)[0]  # a name imported from a module
                    if target != module:
                        found.append(Import(module, target, child.lineno, child_kind))
                visit(child, child_kind)

        visit(tree, "top")
    return found


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else PACKAGE


def rank(module: str, layers: list[tuple[str, ...]] = LAYERS) -> int:
    for i, names in enumerate(layers):
        if unit(module) in names:
            return i
    raise AssertionError(f"{module}: its package {unit(module)!r} is in no layer of tests/test_layers.py")


def violations(found: Iterable[Import], layers: list[tuple[str, ...]] = LAYERS) -> dict[tuple[str, str], Import]:
    """Imports of a higher layer than the importer's, by (importer, imported)."""
    return {(i.importer, i.imported): i for i in found if rank(i.imported, layers) > rank(i.importer, layers)}


def cycles(edges: Iterable[tuple[str, str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one node (Tarjan, iterative)."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[frozenset[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(frozenset(component))
    return out


def module_cycles(found: Iterable[Import]) -> list[frozenset[str]]:
    return cycles((i.importer, i.imported) for i in found if i.kind != "type")


def package_cycles(found: Iterable[Import]) -> list[frozenset[str]]:
    """Cycles between top-level packages (``generate`` -> ``ingest`` -> ``generate``), in any file."""
    edges = {(unit(i.importer), unit(i.imported)) for i in found if i.kind != "type"}
    return cycles((a, b) for a, b in edges if a != b)


def job_adapters(srcs: dict[str, str]) -> set[str]:
    """``run_*_job`` functions defined outside segengine.pipeline."""
    out = set()
    for module, text in srcs.items():
        if unit(module) == "pipeline":
            continue
        for node in _parse(text).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("run_") and node.name.endswith("_job"):
                out.add(f"{module}.{node.name}")
    return out


def _describe(found: dict[tuple[str, str], Import]) -> str:
    return "; ".join(
        f"{i.importer} (line {i.line}, {i.kind}) imports {i.imported}: layer {unit(i.importer)} "
        f"may not import {unit(i.imported)}"
        for i in found.values()
    )


# ---------------------------------------------------------------- the package


@functools.cache
def _package() -> tuple[dict[str, str], list[Import]]:
    srcs = sources()
    return srcs, imports(srcs)


def _with(extra: dict[str, str]) -> tuple[dict[str, str], list[Import]]:
    """The package's sources and imports with the modules of ``extra`` added."""
    srcs, found = _package()
    known = set(srcs) | set(extra)
    return {**srcs, **extra}, found + imports(extra, known)


def test_every_package_has_a_layer():
    for module in _package()[0]:
        rank(module)


def test_imports_go_down_the_layers_only():
    found = violations(_package()[1])
    new = {k: v for k, v in found.items() if k not in KNOWN_VIOLATIONS}
    assert not new, "imports against the layers: " + _describe(new)
    gone = set(KNOWN_VIOLATIONS) - set(found)
    assert not gone, f"fixed, so delete from KNOWN_VIOLATIONS: {sorted(gone)}"


def test_no_new_import_cycles():
    found = _package()[1]
    cyc = set(module_cycles(found))
    new = cyc - set(KNOWN_CYCLES)
    assert not new, f"import cycles: {[sorted(c) for c in new]}"
    gone = set(KNOWN_CYCLES) - cyc
    assert not gone, f"no longer cycles, so delete from KNOWN_CYCLES: {[sorted(c) for c in gone]}"
    assert package_cycles(found) == [], "packages that import each other"


def _feature_module(module: str) -> str | None:
    """``segengine.features.X`` -> ``X`` ("" for the package itself), None outside it."""
    prefix = f"{PACKAGE}.features"
    if module == prefix:
        return ""
    return module[len(prefix) + 1 :] if module.startswith(prefix + ".") else None


def feature_back_edges(
    found: Iterable[Import], stages: list[tuple[str, ...]] = FEATURE_STAGES, helpers: Iterable[str] = FEATURE_HELPERS
) -> list[str]:
    """Imports within segengine.features that go to a later stage, a peer or an unlisted module."""
    order = {name: i for i, names in enumerate(stages) for name in names}
    helpers = set(helpers)
    out = []
    for i in found:
        a, b = _feature_module(i.importer), _feature_module(i.imported)
        if a is None or b is None or (a in helpers and b in helpers):
            continue
        for name in (a, b):
            if name not in order and name not in helpers:
                out.append(f"segengine.features.{name} is in no stage of FEATURE_STAGES (or FEATURE_HELPERS)")
        if a in helpers and b not in helpers:
            out.append(f"helper segengine.features.{a} (line {i.line}) imports stage segengine.features.{b}")
        elif b not in helpers and a in order and b in order and order[b] >= order[a]:
            out.append(
                f"segengine.features.{a} (line {i.line}, {i.kind}) imports segengine.features.{b}: not an earlier stage"
            )
    return out


def test_features_stages_import_only_earlier_stages():
    found = _package()[1]
    assert not feature_back_edges(found), feature_back_edges(found)
    listed = {name for names in FEATURE_STAGES for name in names} | set(FEATURE_HELPERS)
    present = {_feature_module(m) for m in _package()[0]} - {None}
    assert present == listed, (
        f"stages listed but missing {sorted(listed - present)}, present but unlisted {sorted(present - listed)}"
    )


def test_job_adapters_live_in_the_pipeline():
    found = job_adapters(_package()[0])
    new = found - set(KNOWN_JOB_ADAPTERS)
    assert not new, f"job adapters outside segengine.pipeline (move them to segengine/pipeline/jobs.py): {sorted(new)}"
    gone = set(KNOWN_JOB_ADAPTERS) - found
    assert not gone, f"moved, so delete from KNOWN_JOB_ADAPTERS: {sorted(gone)}"


# ---------------------------------------------------------------- the checker itself


def test_checker_catches_an_added_upward_import_even_inside_a_function():
    _, found = _with(
        {
            "segengine.lake.extra": "def f():\n    from segengine.models.clv import score_clv\n    return score_clv\n",
            "segengine.features.extra": "from segengine import rules\n",
            "segengine.rules.extra": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..pipeline import entry\n",
        }
    )
    new = {k: v for k, v in violations(found).items() if k not in KNOWN_VIOLATIONS}
    assert set(new) == {
        ("segengine.lake.extra", "segengine.models.clv"),
        ("segengine.features.extra", "segengine.rules"),
        ("segengine.rules.extra", "segengine.pipeline.entry"),
    }
    assert new[("segengine.lake.extra", "segengine.models.clv")].kind == "function"
    assert new[("segengine.rules.extra", "segengine.pipeline.entry")].kind == "type"


def test_checker_catches_an_added_cycle_but_not_a_type_only_one():
    _, found = _with(
        {
            "segengine.features.one": "from segengine.features import two\nfrom segengine.features.three import y\n",
            "segengine.features.two": "def f():\n    import segengine.features.one\n",
            "segengine.features.three": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from segengine.features.one import x\n",
        }
    )
    new = set(module_cycles(found)) - set(KNOWN_CYCLES)
    assert new == {frozenset({"segengine.features.one", "segengine.features.two"})}


def test_checker_catches_packages_that_import_each_other_and_stray_adapters():
    _, found = _with({"segengine.ingest.extra": "def f():\n    from segengine.generate import generate_raw\n"})
    assert package_cycles(found) == [frozenset({"generate", "ingest"})]
    srcs = {"segengine.models.extra": "def run_extra_job(ctx):\n    return ctx\n"}
    assert job_adapters(srcs) == {"segengine.models.extra.run_extra_job"}


def test_checker_catches_a_features_stage_calling_back_up():
    """A back-edge, a peer, a helper importing a stage and an unlisted module all fail."""
    extra = imports(
        {
            "segengine.features.state": "from segengine.features.table import state_features\n",
            "segengine.features.bronze": "def f():\n    from segengine.features import rfmt\n",
            "segengine.features.tiers": "from segengine.features import scores\n",
            "segengine.features.windows": "from segengine.features import bronze\n",
            "segengine.features.table": "from segengine.features import state, extra\n",
        },
        set(_package()[0]) | {"segengine.features.extra"},
    )
    got = feature_back_edges(extra)
    assert any("state (line 1, top) imports segengine.features.table" in g for g in got), got
    assert any("bronze (line 2, function) imports segengine.features.rfmt" in g for g in got), got
    assert any("tiers (line 1, top) imports segengine.features.scores" in g for g in got), got
    assert any("helper segengine.features.windows" in g for g in got), got
    assert any("features.extra is in no stage" in g for g in got), got
    assert not any("imports segengine.features.state:" in g for g in got), got
