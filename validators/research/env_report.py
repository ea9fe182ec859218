"""Stage B2: env_check_report.md, what the venv holds against what its requirement file pins.

    python -m validators env-check --env debug-cpu
"""

from __future__ import annotations

import importlib.metadata
import platform
import time
from collections.abc import Iterator
from typing import Any

from ..artifacts import ENV_CHECK
from ..errors import GateError
from ..frontmatter import join
from ..pins import ENVIRONMENTS, PIN, canonical
from ..project import Project


def env_report(project: Project, env: str) -> dict[str, Any]:
    import torch

    gpus = [{"name": torch.cuda.get_device_name(i),
             "memory_gb": round(torch.cuda.get_device_properties(i).total_memory / 1e9, 1)}
            for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else "none"
    packages = {canonical(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    return {"schema_version": 1, "environment": env, "python_version": platform.python_version(),
            "packages_installed": dict(sorted(packages.items())),
            "torch": {"version": str(torch.__version__), "cuda_available": torch.cuda.is_available(),
                      "cuda_version": None if torch.version.cuda is None else str(torch.version.cuda)},
            "gpu": gpus, "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def write_env_report(project: Project, env: str) -> dict[str, Any]:
    report = env_report(project, env)
    gpu = "none" if report["gpu"] == "none" else ", ".join(f"{g['name']} ({g['memory_gb']} GB)" for g in report["gpu"])
    body = [f"# Environment check: {env} (stage B2)", "", f"- Python {report['python_version']}",
            f"- torch {report['torch']['version']}, CUDA available: {report['torch']['cuda_available']}"
            f" (CUDA {report['torch']['cuda_version']})", f"- GPU: {gpu}",
            f"- {len(report['packages_installed'])} packages installed (front matter)"]
    project.write_text(ENV_CHECK, join(report, "\n".join(body) + "\n"))
    return report


def rule_env_check(project: Project) -> Iterator[GateError]:
    doc, errors = project.validated(ENV_CHECK.path, ENV_CHECK.schema)
    yield from errors
    if doc is None:
        return
    wanted = str(project.answers.get("python_version", ""))
    if not doc["python_version"].startswith(wanted + "."):
        yield GateError(ENV_CHECK.path, "python_version", doc["python_version"], f"Python {wanted}.x", "rebuild: nox -s setup")
    for line in (project.read(ENVIRONMENTS[doc["environment"]]) or "").splitlines():
        m = PIN.match(line.strip())
        if m and (not m.group(3) or "linux" in m.group(3) and "!=" not in m.group(3)):
            got = doc["packages_installed"].get(canonical(m.group(1)))
            if got != m.group(2):
                yield GateError(ENV_CHECK.path, f"packages_installed.{canonical(m.group(1))}", got,
                                f"{m.group(2)} (pinned in {ENVIRONMENTS[doc['environment']]})", "rebuild: nox -s setup")
