"""The artifact registry is the one place a stage output's path is spelt, and what is derived from it."""

from __future__ import annotations

import ast
import re

from validators import artifacts

from ..helpers import TEMPLATE

# A string that names a stage output: a report, a planning document, a run file, a figure.
ARTIFACT_LIKE = re.compile(r"^(?:reports|docs/plan|runs)/|(?:_report\.md|_REPORT\.md|BUILD_LOG\.md|\.ckpt|\.png|summary\.json)$")


def literals(path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings]


def test_every_path_is_registered_once():
    paths = [a.path for a in artifacts.ARTIFACTS]
    assert len(paths) == len(set(paths))
    assert all(a.owner in (artifacts.TEMPLATE, artifacts.PROJECT, artifacts.RUNTIME) for a in artifacts.ARTIFACTS)


def test_no_stage_module_spells_an_artifact_path_itself():
    spelt = {}
    for path in sorted((TEMPLATE / "validators").rglob("*.py")):
        if path.name == "artifacts.py" or "__pycache__" in path.parts:
            continue
        found = [s for s in literals(path) if ARTIFACT_LIKE.search(s) and " " not in s]
        if found:
            spelt[path.relative_to(TEMPLATE).as_posix()] = found
    assert spelt == {}


def test_what_update_keeps_and_what_the_readme_may_name_come_from_the_registry():
    assert artifacts.PROJECT_OWNED == (
        "docs/plan/requirements.md", "docs/plan/tech.md", "docs/plan/task.md", "CLAUDE.local.md", "CLAUDE.inherited.md",
        "data/mini", "scripts/launch_slurm.sh", "scripts/launch_torchrun.sh", "configs/experiment/full_ddp.yaml",
        "deploy/monitoring", "jobs", "notes", "notes/index.md", "reports")
    assert {"runs", "runs/latest/checkpoints/last.ckpt", "reports/docker_error_report_", "reports/bugfix_report.md",
            "reports/figures", "jobs", ".venv"} <= set(artifacts.RUNTIME_PATHS)
    assert "docs/plan/requirements.md" not in artifacts.RUNTIME_PATHS  # written at copy time: the README gate checks it
    assert {"runs", "data", ".venvs"} <= artifacts.SKIP_AT_ROOT | artifacts.SKIP_ANYWHERE


def test_a_missing_document_names_the_stage_that_writes_it(tmp_path):
    from validators.project import Project

    assert [str(e) for e in Project(tmp_path).front("reports/bugfix_report.md")[1]] == [
        "reports/bugfix_report.md: <root>: missing: expected the file to exist "
        "(hint: stage B3 writes it: nox -s bugfix, or nox -s project (B1-B4 in order))"]
