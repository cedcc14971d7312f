"""The house's floors (README, Architecture; ../shared/STYLE.md "Where code lives"), read from the code.

Every import between the project's packages, function-local and type-checking ones included, is an
edge of the module graph. Imports point down the floors, never up; the pure modules (no Django) import
only pure modules and libraries; and no import circle spans two of curriculum/, tutor/, tracing/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "curriculum", "tutor", "tracing")
APPS = ("curriculum", "tutor", "tracing")

PURE = -1
CONFIG, CURRICULUM, LEARNERS, TRACING, ACTIONS, INTERFACES = 0, 1, 2, 3, 4, 5

PURE_MODULES = (
    "tracing.data",
    "tracing.evaluation",
    "tracing.formats",
    "tracing.simulate",
    "tracing.estimators",
    "curriculum.graph",
    "curriculum.policies",
    "curriculum.answers",
    "curriculum.simulation",
    "curriculum.simulation_sittings",
)
"""Importable from any floor; they import only each other and libraries, never Django."""

FLOOR_RULES: tuple[tuple[str, int], ...] = (
    # The first rule whose prefix matches a module decides its floor.
    ("tutor.settings", CONFIG),
    ("tutor.celery", CONFIG),
    ("core", CONFIG),
    ("tutor.api", INTERFACES),
    ("tutor.web", INTERFACES),
    ("tutor.lti.views", INTERFACES),
    ("tutor.lti.urls", INTERFACES),
    ("tutor.lti.admin", INTERFACES),
    ("tutor.admin", INTERFACES),
    ("curriculum.admin", INTERFACES),
    ("tracing.admin", INTERFACES),
    ("tutor.urls", INTERFACES),
    ("tutor.wsgi", INTERFACES),
    ("tutor.health", INTERFACES),
    ("tutor.tasks", INTERFACES),  # beat's entry points into tutor.actions
    ("tutor.management", INTERFACES),
    ("tracing.management", INTERFACES),
    ("curriculum.management", INTERFACES),
    ("tutor.actions", ACTIONS),
    ("tutor.demo", ACTIONS),
    ("tutor.privacy", ACTIONS),
    ("tutor.exports", ACTIONS),
    ("tracing", TRACING),
    ("tutor.lti", TRACING),  # the LMS passback reads mastery: beside tracing
    ("tutor", LEARNERS),
    ("curriculum", CURRICULUM),
)
FORBIDDEN_IN_PURE = ("django", "rest_framework", "celery", "drf_spectacular")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                found[_module_name(path)] = path
    return found


def _imports(path: Path, module: str, known: dict[str, Path]) -> set[str]:
    """Every module this file imports (anywhere in it), resolved to a module of the project or a library."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                targets.add(candidate if candidate in known else base)
    return targets


def floor(module: str) -> int:
    if module.startswith(PURE_MODULES) and any(
        module == pure or module.startswith(pure + ".") for pure in PURE_MODULES
    ):
        return PURE
    if module == "tutor":
        return CONFIG  # the package's __init__ only loads the Celery app
    for prefix, level in FLOOR_RULES:
        if module == prefix or module.startswith(prefix + "."):
            return level
    raise AssertionError(f"{module} has no floor: add it to FLOOR_RULES or PURE_MODULES")


def _graph() -> dict[str, set[str]]:
    known = _modules()
    graph = {}
    for module, path in known.items():
        graph[module] = {
            target for target in _imports(path, module, known) if target.split(".")[0] in PACKAGES and target != module
        }
        for target in graph[module]:
            assert target in known, f"{module} imports {target}, which is not a module of the project"
    return graph


def _libraries(module: str) -> set[str]:
    known = _modules()
    return {target.split(".")[0] for target in _imports(known[module], module, known)}


def test_every_module_has_a_floor():
    for module in _modules():
        floor(module)


def test_imports_point_down_the_floors():
    upward = sorted(
        f"{module} (floor {floor(module)}) imports {target} (floor {floor(target)})"
        for module, targets in _graph().items()
        for target in targets
        if floor(target) > floor(module)
    )
    assert not upward, "\n".join(upward)


def test_pure_modules_import_no_django_and_only_pure_modules():
    wrong = []
    for module, targets in _graph().items():
        if floor(module) != PURE:
            continue
        wrong += [f"{module} imports {target}" for target in targets if floor(target) != PURE]
        wrong += [f"{module} imports {library}" for library in _libraries(module) if library in FORBIDDEN_IN_PURE]
    assert not wrong, "\n".join(sorted(wrong))


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
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
                    found.append(component)
    return found


def test_no_import_circle_spans_two_apps():
    spanning = [
        sorted(component)
        for component in _cycles(_graph())
        if len({module.split(".")[0] for module in component} & set(APPS)) > 1
    ]
    assert not spanning, spanning


def test_the_check_finds_a_circle_and_an_upward_import():
    """The checks above are not vacuous: a made-up graph with an app-spanning circle is caught."""
    graph = {
        "tutor.services": {"tracing.services"},
        "tracing.services": {"curriculum.services"},
        "curriculum.services": {"tutor.services"},
    }
    assert _cycles(graph) == [{"tutor.services", "tracing.services", "curriculum.services"}]
    assert floor("curriculum.services") < floor("tutor.services") < floor("tracing.services")
    assert floor("tracing.estimators.bkt") == PURE and floor("tutor.api.views") == INTERFACES


@pytest.mark.parametrize("module", ["tracing.estimators.bkt", "curriculum.graph", "curriculum.policies.frontier"])
def test_named_pure_modules_stay_pure(module):
    assert floor(module) == PURE
    assert not _libraries(module) & set(FORBIDDEN_IN_PURE)
