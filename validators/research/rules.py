"""Stage B1: the rules decision (CLAUDE.local.md, customised, or CLAUDE.inherited.md, inherited).

    python -m validators rules [--inherit]
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from typing import Any

from ..artifacts import CLAUDE, RULES_CUSTOMISED, RULES_INHERITED
from ..chain import chain_of
from ..errors import GateError
from ..frontmatter import join
from ..project import Project
from ..schema import schema_errors

RULE_LINE = re.compile(r"^(\d+)\. \*\*(.+?)\*\*: (.+)$")
DECISIONS = {"customised": RULES_CUSTOMISED.path, "inherited": RULES_INHERITED.path}


def claude_rules(text: str) -> list[tuple[str, str]]:
    """(title, rule) for each numbered line under '## Rules' of CLAUDE.md."""
    section = text.split("## Rules", 1)[-1].split("\n## ", 1)[0]
    return [(m.group(2), m.group(3)) for m in map(RULE_LINE.match, section.splitlines()) if m]


def decide_rules(project: Project, *, inherit: bool, ask: Any = None) -> str:
    """Write the B1 decision; `ask(rules) -> list of (title, new text or None)` customises interactively."""
    source = project.read(CLAUDE.path)
    if source is None:
        raise GateError(CLAUDE.path, "", None, "the file to exist", "`copier update --trust` restores it")
    rules = claude_rules(source)
    today = time.strftime("%Y-%m-%d")
    changes = [] if inherit or ask is None else [
        {"date": today, "rule": title, "change": new} for title, new in ask(rules) if new]
    decision = "customised" if changes else "inherited"
    meta = {"schema_version": 1, "decision": decision, "decided": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "source": CLAUDE.path, "source_sha256": hashlib.sha256(source.encode()).hexdigest(), "changes": changes}
    changed = {c["rule"]: c["change"] for c in changes}
    lines = [f"# CLAUDE rules: {decision} on {today}", "",
             "The rules of CLAUDE.md as this project applies them (stage B1).", "", "## Rules", ""]
    lines += [f"{n}. **{title}**: {changed.get(title, text)}" for n, (title, text) in enumerate(rules, 1)]
    if changes:
        lines += ["", "## Change log", "", "| date | rule | change |", "|---|---|---|"]
        lines += [f"| {c['date']} | {c['rule']} | {c['change']} |" for c in changes]
    for other in DECISIONS.values():
        (project.root / other).unlink(missing_ok=True)
    project.write_text(DECISIONS[decision], join(meta, "\n".join(lines) + "\n"))
    return DECISIONS[decision]


def rule_rules_decision(project: Project) -> Iterator[GateError]:
    present = [name for name in DECISIONS.values() if (project.root / name).exists()]
    if len(present) != 1:
        yield GateError(RULES_CUSTOMISED.path, "", present, f"exactly one of {RULES_CUSTOMISED} or {RULES_INHERITED}",
                        "run `nox -s rules` (add `-- --inherit` to accept the rules without questions), "
                        "or `nox -s {}` ({} in order)".format(*chain_of("B1")))
        return
    doc, errors = project.front(present[0])
    if doc is None:
        yield from errors
        return
    yield from schema_errors(doc, "rules_decision", file=present[0])
    source = project.read(CLAUDE.path) or ""
    if doc.get("source_sha256") != hashlib.sha256(source.encode()).hexdigest():
        yield GateError(present[0], "source_sha256", doc.get("source_sha256"), "the hash of the current CLAUDE.md",
                        "CLAUDE.md changed since the decision (a template update?): run `nox -s rules` again")
