"""Pins and environments: which requirement file each venv is built from, what a pin looks like, and
which distribution an import comes from. Shared by the A5 gate, the B2 report, the A4 review and the
bugfix loop's missing-package fix.
"""

from __future__ import annotations

import os
import re

from .artifacts import REQUIREMENTS_CPU, REQUIREMENTS_GPU

ENVIRONMENTS = {"debug-cpu": REQUIREMENTS_CPU.path, "debug-gpu": REQUIREMENTS_GPU.path}
REQUIREMENT_FILES = tuple(ENVIRONMENTS.values())
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# `name==version` with an optional environment marker (`; sys_platform == "linux"`)
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;]+)\s*(;.*)?$")
# Imports whose distribution has another name; anything else is its own name with '_' -> '-'.
IMPORT_TO_DIST = {"sklearn": "scikit-learn", "PIL": "pillow", "yaml": "pyyaml", "cv2": "opencv-python",
                  "skimage": "scikit-image", "bs4": "beautifulsoup4", "attr": "attrs"}


def find_links() -> list[str]:
    """Local wheel folders from UV_FIND_LINKS / PIP_FIND_LINKS (space or os.pathsep separated), in order, once each."""
    folders: list[str] = []
    for var in ("UV_FIND_LINKS", "PIP_FIND_LINKS"):
        folders += [f for f in os.environ.get(var, "").replace(os.pathsep, " ").split() if f not in folders]
    return folders


def uv_sources(env: str, links: list[str]) -> list[str]:
    """Where `uv pip install -r <env's requirement file>` finds wheels: the local folders `links` when given, else,
    for debug-cpu, PyTorch's CPU index beside PyPI (PyPI's Linux torch is the CUDA build). The noxfile's venvs
    and the cluster's .venv (stage D2) both install with these arguments."""
    args = [arg for folder in links for arg in ("--find-links", folder)]
    if env == "debug-cpu" and not links:
        args += ["--extra-index-url", TORCH_CPU_INDEX, "--index-strategy", "unsafe-best-match"]
    return args


def canonical(name: str) -> str:
    """PEP 503 name: `prometheus_client` and `Prometheus-Client` are the same distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def distribution(module: str) -> str:
    """The distribution that provides top-level `module` (`sklearn` -> `scikit-learn`)."""
    return IMPORT_TO_DIST.get(module, module.lower().replace("_", "-"))
