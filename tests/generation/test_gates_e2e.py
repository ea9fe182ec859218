"""Mutation tests: corrupt one thing in a freshly generated project, get exactly the expected error."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from validators.__main__ import table
from validators.errors import UsageError
from validators.frontmatter import join, split
from validators.gates import expand, run
from validators.project import Project
from validators.research.rules import decide_rules

from ..helpers import render

pytestmark = pytest.mark.e2e  # each case generates a project and runs its validators for real
STAGES = ["A", "B1"]  # B2 needs the project venv: tests/test_e2e.py


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    root = render(tmp_path_factory.mktemp("clean") / "demo_project")
    decide_rules(Project(root), inherit=True)
    return root


@pytest.fixture
def copy(clean, tmp_path) -> Path:
    return Path(shutil.copytree(clean, tmp_path / "demo_project"))


def errors(root: Path) -> list[str]:
    return [str(e) for e in run(Project(root), STAGES, table())]


def edit_front(root: Path, name: str, change: Callable[[dict], None]) -> None:
    data, body = split((root / name).read_text(encoding="utf-8"))
    change(data)
    (root / name).write_text(join(data, body), encoding="utf-8")


def edit_text(root: Path, name: str, old: str, new: str) -> None:
    text = (root / name).read_text(encoding="utf-8")
    assert old in text, (name, old)
    (root / name).write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(root: Path, name: str, text: str) -> int:
    """The 1-based line of the only occurrence of `text`, read before the mutation moves nothing."""
    lines = (root / name).read_text(encoding="utf-8").splitlines()
    found = [n for n, line in enumerate(lines, 1) if text in line]
    assert len(found) == 1, (name, text, found)
    return found[0]


def test_clean_project_passes_every_gate(clean):
    assert errors(clean) == []


def test_stage_names_expand_and_unknown_ones_are_rejected():
    assert expand(["A", "B1"], table()) == ["A1", "A2", "A3", "A4", "A5", "B1"]
    with pytest.raises(UsageError, match=r"^unknown stage 'C9': expected one of A1, A2, A3, A4, A5, B1, B2, B3, B4, C4, D1, D2, D4, D7 or a group \(A, B, C, D\)$"):
        expand(["C9"], table())


MUTATIONS = {
    "score_1_5": (
        lambda r: edit_front(r, "docs/plan/requirements.md", lambda d: d["items"][0].update(score=1.5)),
        "docs/plan/requirements.md: items[0].score: 1.5 is invalid: expected at most 1 "
        "(hint: scores lie in 0..1 (the rules: docs/planning.md of the template))",
    ),
    "missing_candidate": (
        lambda r: edit_front(r, "docs/plan/tech.md", lambda d: d["candidates"].pop(1)),
        "docs/plan/tech.md: candidates: ['small_cnn', 'resnet18', 'resnet50', 'convnext_tiny'] is invalid: expected a candidate "
        "for every generated model (convnext_tiny, resnet, resnet18, resnet50, small_cnn), "
        "at least 2 (hint: add resnet; re-run the planner: `nox -s plan -- --force`)",
    ),
    "candidate_without_dataset": (
        lambda r: edit_front(r, "docs/plan/tech.md", lambda d: d["candidates"][1].pop("datasets")),
        "docs/plan/tech.md: candidates[1].datasets: missing: expected 'datasets' to be present "
        "(hint: every candidate needs its datasets, resource figures and constraints)",
    ),
    "task_without_build_log_entry": (
        lambda r: edit_front(r, "reports/PROJECT_BUILD_LOG.md", lambda d: d["entries"].pop(2)),
        "reports/PROJECT_BUILD_LOG.md: entries.T3: missing: expected an entry for task T3 of task.md "
        "(hint: re-run `python -m validators build-log` (nox -s review))",
    ),
    "readme_names_a_missing_session": (
        lambda r: edit_text(r, "README.md", "## Quick start\n", "## Quick start\n\nShip it with `nox -s deploy_now`.\n"),
        "README.md: sessions.deploy_now: 'deploy_now' is invalid: expected a session of noxfile.py "
        "(setup, rules, env_check, train_smoke, bugfix, guidance, tests, lint, serve, docker_env, docker_base, wheelhouse, docker_build, container_check, deploy, monitor, submit, job, jobs, sync_agent, results, note, fetch_weights, fetch_data, weights_check, cluster_venv, plan, review, validate, update_check, project, docker) "
        "(hint: fix the README or add the session)",
    ),
    "import_missing_from_requirements": (
        lambda r: edit_text(r, "src/demo_project/predict.py", "import torch\n", "import jinja2  # noqa: F401\nimport torch\n"),
        "src/demo_project/predict.py: imports.jinja2: 'jinja2' is invalid: expected 'jinja2' pinned in "
        "requirements-cpu.txt and requirements-gpu.txt (hint: add jinja2==<version> to both requirement files and "
        "re-run `nox -s setup`)",
    ),
    "config_key_that_does_not_exist": (
        lambda r: edit_text(r, "src/demo_project/train.py", "cfg.checkpoint.save_top_k", "cfg.checkpoint.save_topk"),
        lambda r: f"src/demo_project/train.py: line {line_of(r, 'src/demo_project/train.py', 'cfg.checkpoint.save_top_k')}: "
        "'checkpoint.save_topk' is invalid: expected a key of the config schema "
        "(configs/ and the *Config dataclasses) (hint: did you mean 'save_top_k'?)",
    ),
    "missing_report_field": (
        lambda r: edit_front(r, "reports/REVIEW_REPORT.md", lambda d: d.pop("generator")),
        "reports/REVIEW_REPORT.md: generator: missing: expected 'generator' to be present (hint: add the missing key)",
    ),
    "rules_decision_missing": (
        lambda r: (r / "CLAUDE.inherited.md").unlink(),
        "CLAUDE.local.md: <root>: [] is invalid: expected exactly one of CLAUDE.local.md or CLAUDE.inherited.md "
        "(hint: run `nox -s rules` (add `-- --inherit` to accept the rules without questions), "
        "or `nox -s project` (B1-B4 in order))",
    ),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_one_corruption_gives_exactly_its_error(copy, name):
    mutate, expected = MUTATIONS[name]
    expected = expected(copy) if callable(expected) else expected  # read before the mutation
    mutate(copy)
    assert errors(copy) == [expected]
