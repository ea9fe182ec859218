"""Stage A3: the task list of the generated project, each with inputs, outputs and checkable done-criteria.

The tasks are what the template builds, in build order. Every task carries `checks` of four kinds
that code re-runs (the A3 build-log gate): `file_exists` (a path), `imports` (a module under
src/), `runs` (a command whose exit status must be 0) and `config_loads` (config overrides, or
`defaults`).
"""

from __future__ import annotations

from typing import Any

from validators.artifacts import REQUIREMENTS, TECH, VENV_SPEC


def tasks(family: str, model: str, package: str, catalog: dict[str, Any]) -> list[dict[str, Any]]:
    spec = catalog[family]
    dm = spec["datamodule"]
    models = list(spec["models"])
    components = list(dict.fromkeys(spec["models"][key].get("component", key) for key in models))  # shared modules once
    raw = [
        ("Write the mini dataset in the full loader's format",
         [f"{REQUIREMENTS} (data item)", f"catalog: {spec['mini']['name']}"],
         ["data/mini/", "data/mini/DATA_CARD.md"],
         ["data/mini holds the mini data in the layout the full-data loader reads", "the data card names origin and licence"],
         [("file_exists", "data/mini/DATA_CARD.md")]),
        ("Implement the LightningDataModule",
         ["data/mini/", f"full data layout: {spec['full']['layout']}"],
         [f"src/{package}/data/common.py", f"src/{package}/data/{dm}.py"],
         ["the module imports", "it reads data/mini and data/full with the same code"],
         [("file_exists", f"src/{package}/data/{dm}.py"), ("imports", f"{package}.data")]),
        ("Implement the candidate models in plain PyTorch",
         [f"{TECH} (candidates)"],
         [f"src/{package}/models/components/{name}.py" for name in components],
         [f"every candidate of {TECH} has a component", "the components import"],
         [("file_exists", f"src/{package}/models/components/{name}.py") for name in components]
         + [("imports", f"{package}.models.components")]),
        ("Implement the LightningModule (loss, metrics, optimiser, scheduler)",
         [f"src/{package}/models/components/"],
         [f"src/{package}/models/module.py"],
         ["the module imports"],
         [("imports", f"{package}.models.module")]),
        ("Write the typed, closed OmegaConf configs",
         [f"{TECH} (chosen model, batch size, epochs)"],
         ["configs/train.yaml", "configs/data/", "configs/model/", "configs/trainer/", "configs/logger/"],
         ["the default config and every model config load"],
         [("config_loads", "defaults")] + [("config_loads", f"model={key}") for key in models]),
        ("Write the training and inference entry points",
         [f"src/{package}/train.py", f"src/{package}/predict.py"],
         ["scripts/train.py", "scripts/infer.py"],
         ["`scripts/train.py --help` and `scripts/infer.py --help` run"],
         [("runs", "python scripts/train.py --help"), ("runs", "python scripts/infer.py --help")]),
        ("Write the nox sessions and pinned environments",
         [VENV_SPEC.path],
         ["noxfile.py", "requirements-cpu.txt", "requirements-gpu.txt"],
         ["noxfile.py and both requirement files exist"],
         [("file_exists", "noxfile.py"), ("file_exists", "requirements-cpu.txt"), ("file_exists", "requirements-gpu.txt")]),
        ("Write the README: quick start, full-data training, inference",
         [REQUIREMENTS.path, TECH.path],
         ["README.md"],
         ["README.md exists and names the nox sessions"],
         [("file_exists", "README.md")]),
    ]
    return [
        {"id": f"T{i}", "title": title, "inputs": inputs, "outputs": outputs, "done_criteria": done,
         "checks": [{"kind": kind, "target": target} for kind, target in checks]}
        for i, (title, inputs, outputs, done, checks) in enumerate(raw, start=1)
    ]
