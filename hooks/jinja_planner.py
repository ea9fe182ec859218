"""Jinja extension: the offline planner's inference as the default of copier's questions.

copier.yml loads it through copier-template-extensions and uses the filter in defaults:

    task_family:
      default: "{{ requirement | planner_default('task_family') }}"

so the researcher confirms or corrects what the planner read, and the answer is recorded in
.copier-answers.yml.
"""

from __future__ import annotations

import sys
from pathlib import Path

from jinja2 import Environment
from jinja2.ext import Extension

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from hooks.planner.offline import infer  # noqa: E402


def planner_default(requirement: str, question: str, family: str | None = None) -> str:
    return infer(str(requirement or ""), question, family)


class PlannerExtension(Extension):
    def __init__(self, environment: Environment):
        super().__init__(environment)
        environment.filters["planner_default"] = planner_default
