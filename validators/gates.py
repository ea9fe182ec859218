"""Run the stage gates: every rule of the chosen stages, every error collected.

Each wing lists its rules by stage (`GATES` in its `__init__.py`); `__main__` merges them into one
table and passes it in, so the core never imports a wing. A rule may also yield a `GateWarning`: it is
printed (or handed to `warn`) and never counted as an error, so it never fails a gate.

    errors = run(project, ["A", "B1"], table)
    errors = run(project, ["D7"], table, warn=found.append)   # collect the warnings instead of printing them
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from .errors import GateError, GateWarning, UsageError
from .project import Project

Rule = Callable[[Project], Iterator[GateError]]
Table = Mapping[str, Sequence[Rule]]


def merge(*tables: Table) -> dict[str, list[Rule]]:
    """One table from the wings' tables, stages in order (A1..A5, B1..B4, C1..C4)."""
    out: dict[str, list[Rule]] = {}
    for table in tables:
        for stage, rules in table.items():
            out.setdefault(stage, []).extend(rules)
    return dict(sorted(out.items()))


def expand(stages: Iterable[str], table: Table) -> list[str]:
    """'A' -> A1..A5; an unknown name is a UsageError naming the valid ones."""
    out: list[str] = []
    for stage in stages:
        matched = [s for s in table if s == stage or s.startswith(stage) and len(stage) == 1]
        if not matched:
            groups = ", ".join(sorted({s[0] for s in table}))
            raise UsageError(f"unknown stage {stage!r}: expected one of {', '.join(table)} or a group ({groups})")
        out += [s for s in matched if s not in out]
    return out


def run(project: Project, stages: Iterable[str], table: Table,
        warn: Callable[[GateWarning], object] = print) -> list[GateError]:
    """Every error of the stages' rules; each warning goes to `warn` (default: printed) and not into the list."""
    found: list[GateError] = []
    for stage in expand(stages, table):
        for rule in table[stage]:
            try:
                found.extend(rule(project))
            except GateError as err:
                found.append(err)
    for warning in (f for f in found if isinstance(f, GateWarning)):
        warn(warning)
    return [f for f in found if not isinstance(f, GateWarning)]
