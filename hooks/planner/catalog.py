"""Read the model and dataset catalog (catalog.yml at the template root) from Python.

    from hooks.planner.catalog import load_catalog
    load_catalog()["image_classification"]["models"]  # {'small_cnn': {...}, 'resnet': {...}}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

CATALOG_PATH = Path(__file__).resolve().parents[2] / "catalog.yml"


def load_catalog(path: Path = CATALOG_PATH) -> dict[str, Any]:
    """The family -> spec mapping that copier.yml includes as the hidden `catalog` question."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))["catalog"]["default"]
