"""Gates A1-A3 on the planning documents: requirements.md, tech.md, task.md.

Schema errors first (validators/schemas/), then what a schema cannot say: the chosen model is a
candidate, every generated model (configs/model/*.yaml) is a candidate and there are at least two,
and tech.md's parameter counts equal the models instantiated now.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..artifacts import REQUIREMENTS, TASK, TECH
from ..errors import GateError
from ..project import Project
from ..schema import schema_errors


def rule_requirements(project: Project) -> Iterator[GateError]:
    """A1: schema, including the score gate (<= 0.6 needs a clarification with a strategy)."""
    doc, errors = project.front(REQUIREMENTS.path)
    yield from errors
    if doc is not None:
        yield from schema_errors(doc, REQUIREMENTS.schema, file=REQUIREMENTS.path)


def rule_task(project: Project) -> Iterator[GateError]:
    """A3: the task list has ids, inputs, outputs, done-criteria and machine checks."""
    doc, errors = project.front(TASK.path)
    yield from errors
    if doc is not None:
        yield from schema_errors(doc, TASK.schema, file=TASK.path)


def rule_tech(project: Project) -> Iterator[GateError]:
    """A2: schema; chosen among the candidates; a candidate for every generated model, at least 2."""
    doc, errors = project.validated(TECH.path, TECH.schema)
    yield from errors
    if doc is None:
        return
    keys = [c["key"] for c in doc["candidates"]]
    generated = sorted(p.stem for p in (project.root / "configs" / "model").glob("*.yaml"))
    missing = [m for m in generated if m not in keys]
    if missing or len(keys) < 2:
        yield GateError(TECH.path, "candidates", keys,
                        f"a candidate for every generated model ({', '.join(generated)}), at least 2",
                        f"add {', '.join(missing) or 'a second candidate'}; re-run the planner: `nox -s plan -- --force`")
    if doc["chosen"] not in keys:
        yield GateError(TECH.path, "chosen", doc["chosen"], f"one of the candidates ({', '.join(keys)})",
                        "choose a candidate that the project generates")


def rule_tech_params(project: Project) -> Iterator[GateError]:
    """A2: parameter counts are measured: they equal the generated models instantiated now.

    Only the parameters are counted (resources.count_params: build each model, no FLOP count, no latency
    loop), so the gate stays fast with ResNet-50, ConvNeXt or BERT-sized candidates; a pretrained one is
    built with model.pretrained=false as it was measured. "pending" figures (copy time) pass only while
    no project venv exists: `nox -s setup` measures them.
    """
    doc, _ = project.front(TECH.path)
    if doc is None or list(schema_errors(doc, TECH.schema, file=TECH.path)):
        return  # rule_tech reports it
    from ..resources import count_params, pending

    waiting = pending(doc)
    if waiting:
        if project.set_up:
            for i, c in enumerate(doc["candidates"]):
                if c["key"] in waiting:
                    yield GateError(TECH.path, f"candidates[{i}].params_source", c["params_source"],
                                    "measured figures once the project venv exists",
                                    "run `nox -s setup`: it measures the models in the project venv")
        return

    models = [c["key"] for c in doc["candidates"]]
    try:
        counted = count_params(project.root, project.package, models)
    except ImportError as err:
        yield GateError(TECH.path, "candidates", err.name, "torch, lightning and omegaconf importable to re-count parameters",
                        "run the validators in the project venv: nox -s validate")
        return
    except Exception as err:  # noqa: BLE001 - a model that does not build is exactly what to report
        yield GateError(TECH.path, "candidates", f"{type(err).__name__}: {err}", "every candidate model to build",
                        "run `nox -s train_smoke` to see the full traceback")
        return
    for i, c in enumerate(doc["candidates"]):
        count = counted.get(c["key"])
        if c["params"] != count:
            yield GateError(TECH.path, f"candidates[{i}].params", c["params"], f"{count} (the generated {c['key']} instantiated now)",
                            "re-run the planner so tech.md is measured again: `nox -s plan -- --force`")
