"""What the tests share: the template's path and catalog, and rendering it with the real copier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import copier
import pytest

from hooks.planner.catalog import load_catalog

TEMPLATE = Path(__file__).resolve().parents[2]  # absolute: copier stores _src_path as typed
CATALOG = load_catalog()
FAMILIES = list(CATALOG)
FAMILY_MODELS = [(f, m) for f in FAMILIES for m in CATALOG[f]["models"]]

def setenv(monkeypatch: pytest.MonkeyPatch, name: str, value: str | None) -> None:
    """Set (None: unset) a variable for this process *and* for copier's tasks.

    copier runs tasks with plumbum's `local.env`, a copy of os.environ taken at import time, so
    os.environ alone does not reach them.
    """
    from plumbum import local

    if value is None:
        monkeypatch.delenv(name, raising=False)
        if name in local.env:
            monkeypatch.delitem(local.env, name)
    else:
        monkeypatch.setenv(name, value)
        monkeypatch.setitem(local.env, name, value)


def render(dst: Path, **data: Any) -> Path:
    """Generate a project into `dst` from the committed template (vcs_ref=HEAD), no prompts."""
    data.setdefault("project_name", "demo_project")
    copier.run_copy(str(TEMPLATE), dst, data=data, defaults=True, unsafe=True, vcs_ref="HEAD", quiet=True)
    return dst


def write_file(path: Path, text: str | bytes, encoding: str = "utf-8") -> Path:
    """Write `text` to `path`, creating its folders (stage outputs live under reports/ and docs/plan/)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding=encoding)
    return path
