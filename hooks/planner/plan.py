"""Assemble the structured plan (the front matter of requirements.md, tech.md and task.md).

The analysis comes from either planner; the candidates come from the catalog; the resource
figures are measured in the project venv (`nox -s setup`) and extrapolated by validators/resources.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from validators import resources

from .extract import language, text_language
from .tasks import tasks


def pinned(project: Path, package: str) -> str:
    """The version pinned in the project's requirements-cpu.txt ('2.13.0' for torch==2.13.0+cpu)."""
    path = project / "requirements-cpu.txt"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    m = re.search(rf"^{re.escape(package)}==([0-9][^\s;+]*)", text, re.MULTILINE)
    return m.group(1) if m else "unpinned"


def requirements_doc(answers: dict[str, Any], analysis: dict[str, Any], planner: dict[str, Any], project: Path) -> dict[str, Any]:
    deployment = next((i["statement"] for i in analysis["items"] if i["name"] == "deployment"), "")
    return {
        "schema_version": 1,
        "project": answers["project_name"],
        "language": language(answers["requirement"]),
        "requirement": answers["requirement"],
        "planner": planner,
        "family": analysis["family"],
        "problem_statements": analysis["problem_statements"],
        "goals": analysis["goals"],
        "sla": analysis["sla"],
        "constraints": analysis["constraints"],
        "compatibility": {
            "python": str(answers.get("python_version", "3.11")),
            "torch": pinned(project, "torch"),
            "lightning": pinned(project, "lightning"),
            "deployment": None if deployment.endswith("not stated") else deployment.removeprefix("deployment target: "),
        },
        "items": analysis["items"],
    }


def tech_doc(answers: dict[str, Any], analysis: dict[str, Any], planner: dict[str, Any], rationale: str,
             measured: dict[str, dict[str, Any]], catalog: dict[str, Any]) -> dict[str, Any]:
    """tech.md's front matter; figures not in `measured` stay pending until `nox -s setup` measures them."""
    family = answers["task_family"]
    spec = catalog[family]
    constraints = analysis["constraints"]
    hw = resources.hardware(constraints.get("gpu"), constraints.get("cpu_only", False), constraints.get("gpu_memory_gb"))
    stated = constraints.get("dataset_size")
    samples = int(stated) if stated else int(spec["full"]["samples"])
    languages = any(m.get("language") for m in spec["models"].values())
    candidates = [{
        "key": key, "label": model["label"], "cls": model["cls"], "kind": model.get("kind", "baseline"),
        "hub": model.get("hub"), "language": model.get("language"),
        "params": None, "params_source": resources.PENDING_SOURCE,
        "flops_per_sample": None, "activations_per_sample": None, "cpu_latency_ms": None,
        "train_memory_gb": None, "train_hours": None,
        "datasets": {
            "mini": {"name": spec["mini"]["name"], "origin": spec["mini"]["origin"], "licence": spec["mini"]["licence"],
                     "generated": spec["mini"]["generated"], "path": "data/mini/"},
            "full": {k: spec["full"][k] for k in ("name", "size", "samples", "licence", "layout")},
        },
        "expected_performance": model["expected"],
        "strengths": model["strengths"], "weaknesses": model["weaknesses"], "constraints": model["constraints"],
    } for key, model in spec["models"].items()]
    doc = {
        "schema_version": 1,
        "family": family,
        "chosen": answers["model"],
        "choice_rationale": rationale,
        "planner": planner,
        "hardware": {k: hw[k] for k in ("name", "source", "fp32_tflops", "tensor_tflops", "memory_gb")},
        "assumptions": {"batch_size": None, "epochs": None, "precision": None,
                        "utilisation": resources.UTILISATION, "full_samples": samples,
                        "samples_source": "requirement" if stated else f"catalog: {spec['full']['name']}"},
        # what the candidates are judged against (resources.verdict); the language only where encoders carry one
        "requirement": {"latency_ms": analysis["sla"].get("latency_ms"), "accelerator": answers.get("accelerator"),
                        "language": text_language(answers["requirement"]) if languages else None},
        "candidates": candidates,
    }
    return resources.apply(doc, measured)


def task_doc(answers: dict[str, Any], catalog: dict[str, Any]) -> dict[str, Any]:
    package = answers["project_name"].replace("-", "_")
    return {"schema_version": 1, "family": answers["task_family"], "model": answers["model"],
            "tasks": tasks(answers["task_family"], answers["model"], package, catalog)}
