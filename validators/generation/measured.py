"""Stage A2's measured figures, taken in the project venv: tech.md's "pending" figures filled in.

copier writes tech.md with its figures pending (copier's own Python need not have torch); `nox -s
setup` builds the project venv and then, in it, runs `python -m validators finish-setup`:

    fill(project)    # measure every candidate, apply the estimates, re-render tech.md; [] when measured already

The A2 gate (documents.rule_tech_params) accepts pending figures only while no project venv exists.
"""

from __future__ import annotations

from ..artifacts import REQUIREMENTS, TECH
from ..errors import HephaestusError
from ..project import Project
from ..resources import apply, measure_candidates, pending
from .render import tech_md


def fill(project: Project) -> list[str]:
    """Measure tech.md's candidates in this interpreter when any is pending; the keys measured."""
    doc, errors = project.validated(TECH.path, TECH.schema)
    if doc is None:
        raise errors[0]
    if not pending(doc):
        return []
    req, errors = project.front(REQUIREMENTS.path)
    if req is None:
        raise errors[0]
    keys = [c["key"] for c in doc["candidates"]]
    try:
        measured = measure_candidates(project.root, project.package, keys)
    except ImportError as err:
        raise HephaestusError(f"{TECH.path}: measuring the models needs '{err.name}' in this Python: "
                              "run it in the project venv (`nox -s setup`)") from err
    except Exception as err:  # noqa: BLE001 - a model that does not build is what to report
        raise HephaestusError(f"{TECH.path}: a candidate model did not build: {type(err).__name__}: {err} "
                              "(hint: `nox -s train_smoke` shows the full traceback)") from err
    project.write_text(TECH.path, tech_md(apply(doc, measured), req["sla"]))
    return keys
