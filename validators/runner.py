"""Run the stage gates: every rule of the chosen stages, every error collected.

    errors = run(Project(Path(".")), ["A", "B1", "B2"])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from . import (
    bugfix_report,
    build_log,
    documents,
    guidance,
    monitor,
    notebook,
    review,
    stage_b,
    static,
    update,
    venv_spec,
)
from .errors import GateError
from .project import Project

Rule = Callable[[Project], Iterator[GateError]]
STAGES: dict[str, list[Rule]] = {
    "A1": [documents.rule_requirements],
    "A2": [documents.rule_tech, documents.rule_tech_params],
    "A3": [documents.rule_task, build_log.rule_build_log],
    "A4": [review.rule_review_report, review.ruff, static.rule_readme, static.rule_imports, static.rule_config_keys,
           update.rule_no_conflicts],
    "A5": [venv_spec.rule_venv_md, venv_spec.rule_requirement_files, venv_spec.rule_spec_copies],
    "B1": [stage_b.rule_rules_decision],
    "B2": [stage_b.rule_env_check, stage_b.rule_mini_dataset, notebook.rule_notebook],
    "B3": [bugfix_report.rule_bugfix_report],
    "B4": [guidance.rule_guidance],
    "C4": [monitor.rule_running_report],
}


def expand(stages: Iterable[str]) -> list[str]:
    """'A' -> A1..A5; unknown names raise ValueError naming the valid ones."""
    out = []
    for stage in stages:
        matched = [s for s in STAGES if s == stage or s.startswith(stage) and len(stage) == 1]
        if not matched:
            raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)} or A, B, C")
        out += [s for s in matched if s not in out]
    return out


def run(project: Project, stages: Iterable[str]) -> list[GateError]:
    errors: list[GateError] = []
    for stage in expand(stages):
        for rule in STAGES[stage]:
            try:
                errors.extend(rule(project))
            except GateError as err:
                errors.append(err)
    return errors
