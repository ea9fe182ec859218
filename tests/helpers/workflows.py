"""The generated GitHub workflows as data, for the D3 tests (tests/template/test_workflows*.py).

    review = load(project / WORKFLOWS[0])
    run_steps(review)          # every `run:` of every job, in order
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

WORKFLOWS = (".github/workflows/review.yml", ".github/workflows/experiment.yml")
NOX_INSTALL = re.compile(r"^python -m pip install nox==(?P<version>\S+)$")  # the one step that is not a session


def load(path: Path) -> dict[str, Any]:
    """A workflow as data; YAML 1.1 reads the key `on` as True, so it is renamed back."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["on"] = data.pop(True)
    return data


def run_steps(workflow: dict[str, Any]) -> list[str]:
    return [step["run"].strip() for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]
