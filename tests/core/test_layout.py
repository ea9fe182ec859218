"""The shape of validators/: a core and its wings, no cycle, no wing reaching into another, small modules."""

from __future__ import annotations

import ast
from pathlib import Path

from ..helpers import TEMPLATE

PACKAGE = TEMPLATE / "validators"
WINGS = {"generation", "research", "bugfix", "docker", "monitoring", "hub", "cluster", "tracking"}
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The validators modules `path` imports (relative imports resolved; `from . import x` names x)."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            if node.module:
                out.add(target)
            else:
                out.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("validators"):
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("validators"))
    return out


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    return {name: {t for t in imports(path) if t in modules} for name, path in modules.items()}


def wing_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in WINGS else None


def test_the_wings_are_the_subpackages():
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} == WINGS
    assert all((PACKAGE / wing / "cli.py").is_file() for wing in WINGS)


def test_no_wing_imports_another_and_the_core_imports_no_wing():
    crossing = sorted((source, target) for source, targets in graph().items() for target in targets
                      if wing_of(target) and wing_of(target) != wing_of(source) and source != "validators.__main__")
    assert crossing == []


def test_the_import_graph_has_no_cycle():
    edges = graph()
    state: dict[str, str] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for target in sorted(edges[node]):
            if state.get(target) == "open":
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    # a package's __init__ importing its own modules is how Python packages work, not a cycle of ours
    cycles = [c for c in cycles if not all(m.startswith(c[0] + ".") or m == c[0] for m in c)]
    assert cycles == []


def test_every_module_stays_under_the_size_limit():
    sources = [*PACKAGE.rglob("*.py"), *(TEMPLATE / "hooks").rglob("*.py")]
    long = {p.relative_to(TEMPLATE).as_posix(): n for p in sources if "__pycache__" not in p.parts
            and (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_validators_readme_says_it_is_template_owned():
    lines = (PACKAGE / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4 and lines[0] == "# validators/: template-owned"
