"""Pins and environments: which requirement file each venv is built from, what a pin looks like, and
which distribution an import comes from. Shared by the A5 gate, the B2 report, the A4 review and the
bugfix loop's missing-package fix.
"""

from __future__ import annotations

import re

from .artifacts import REQUIREMENTS_CPU, REQUIREMENTS_GPU

ENVIRONMENTS = {"debug-cpu": REQUIREMENTS_CPU.path, "debug-gpu": REQUIREMENTS_GPU.path}
REQUIREMENT_FILES = tuple(ENVIRONMENTS.values())
# `name==version` with an optional environment marker (`; sys_platform == "linux"`)
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;]+)\s*(;.*)?$")
# Imports whose distribution has another name; anything else is its own name with '_' -> '-'.
IMPORT_TO_DIST = {"sklearn": "scikit-learn", "PIL": "pillow", "yaml": "pyyaml", "cv2": "opencv-python",
                  "skimage": "scikit-image", "bs4": "beautifulsoup4", "attr": "attrs"}


def canonical(name: str) -> str:
    """PEP 503 name: `prometheus_client` and `Prometheus-Client` are the same distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def distribution(module: str) -> str:
    """The distribution that provides top-level `module` (`sklearn` -> `scikit-learn`)."""
    return IMPORT_TO_DIST.get(module, module.lower().replace("_", "-"))
