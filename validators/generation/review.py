"""Stage A4: REVIEW_REPORT.md, written by code. Each item passes or fails with its evidence.

    python -m validators review      # runs every item, writes REVIEW_REPORT.md, exits 1 if one fails
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..artifacts import REVIEW
from ..errors import GateError
from ..frontmatter import join
from ..project import Project
from .build_log import rule_build_log
from .consistency import nox_sessions, rule_config_keys, rule_imports, rule_readme

FILE = REVIEW.path
FINDING = re.compile(r"^(?P<file>[^:]+(?::cell \d+)?):(?P<line>\d+):(?P<col>\d+): (?P<code>[A-Z]+\d+) (?P<message>.+)$")


def ruff(project: Project) -> Iterator[GateError]:
    try:
        result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
                                cwd=project.root, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as err:
        yield GateError("<project>", "ruff", str(err), "ruff to run", "pip install ruff (it is pinned in the requirements)")
        return
    if result.returncode != 0:
        findings = [m for m in map(FINDING.match, result.stdout.splitlines()) if m]
        if not findings:
            yield GateError("<project>", "ruff", (result.stderr or result.stdout).strip()[:200], "ruff to run",
                            "pip install ruff (it is pinned in the requirements)")
        for m in findings:
            yield GateError(m["file"], f"line {m['line']}:{m['col']}", m["message"], f"no ruff finding ({m['code']})",
                            "run `ruff check --fix .` or fix by hand")


ITEMS: list[tuple[str, str, Callable[[Project], Iterator[GateError]], Callable[[Project], str]]] = [
    ("static", "Static analysis (ruff)", ruff, lambda p: "ruff check: no findings"),
    ("readme", "README commands, sessions and files exist", rule_readme,
     lambda p: f"README names only existing sessions of {len(nox_sessions(p))}, scripts, config keys and files"),
    ("imports", "Third-party imports are pinned", rule_imports,
     lambda p: f"{len(p.python_files())} Python files: every third-party import pinned in both requirement files"),
    ("config_keys", "Config keys in code exist in the schema", rule_config_keys,
     lambda p: "every cfg.* attribute chain names a key of configs/ or a *Config dataclass"),
    ("build_log", "Build-log claims re-checked", lambda p: rule_build_log(p, reuse=True),
     lambda p: "every task of task.md has a done entry whose checks pass when run by this process"),
]


def build(project: Project) -> dict[str, Any]:
    items = []
    for item_id, title, rule, summary in ITEMS:
        errors = [str(e) for e in rule(project)]
        items.append({"id": item_id, "title": title, "passed": not errors, "evidence": errors or [summary(project)]})
    return {"schema_version": 1, "generator": "validators.review", "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "passed": all(i["passed"] for i in items), "items": items}


def write(project: Project) -> dict[str, Any]:
    report = build(project)
    lines = ["# Review report (stage A4)", "", "Written by `python -m validators review`; nothing here is typed by hand.", "",
             "| item | result | evidence |", "|---|---|---|"]
    lines += [f"| {i['title']} | {'pass' if i['passed'] else 'FAIL'} | " + "<br>".join(e.replace("|", "\\|") for e in i["evidence"]) + " |"
              for i in report["items"]]
    project.write_text(FILE, join(report, "\n".join(lines) + "\n"))
    return report


def rule_review_report(project: Project) -> Iterator[GateError]:
    """A4: the report exists, was written by code, covers every item, and every item passes."""
    report, errors = project.validated(FILE, "review_report")
    yield from errors
    if report is None:
        return
    ids = [i["id"] for i in report["items"]]
    for item_id, *_ in ITEMS:
        if item_id not in ids:
            yield GateError(FILE, f"items.{item_id}", None, f"a review item '{item_id}'", "re-run `nox -s review`")
    for n, item in enumerate(report["items"]):
        if not item["passed"]:
            yield GateError(FILE, f"items[{n}].passed", False, "true", "; ".join(item["evidence"])[:300])
