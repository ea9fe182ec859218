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

# A script that calls copier.run_copy twice gets a fresh clone of the template each time, and the first
# clone is deleted by the second call: modules imported from it stay in sys.modules, and the planner's
# lazy imports would look for their files there. Drop the modules whose file is gone.
for name in [n for n, m in list(sys.modules.items()) if n.split(".")[0] in ("hooks", "validators")
             and getattr(m, "__file__", None) and not Path(m.__file__).exists()]:
    del sys.modules[name]

try:
    from hooks.planner.offline import infer
except ImportError:
    # `copier update` renders the project's old release first, in this same interpreter, and that
    # release's extension imported its own `hooks` (0.1.0: hooks/offline_planner.py, no hooks/planner/).
    # Drop the stale packages and import this release's, which ROOT now comes first for.
    for name in [n for n in sys.modules if n.split(".")[0] in ("hooks", "validators")]:
        del sys.modules[name]
    from hooks.planner.offline import infer


def planner_default(requirement: str, question: str, family: str | None = None) -> str:
    return infer(str(requirement or ""), question, family)


class PlannerExtension(Extension):
    def __init__(self, environment: Environment):
        super().__init__(environment)
        environment.filters["planner_default"] = planner_default
