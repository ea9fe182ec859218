"""Shared fixtures: render the template with the real copier, isolated from the user's settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import copier
import pytest

from hooks.catalog import load_catalog

TEMPLATE = Path(__file__).resolve().parent.parent  # absolute: copier stores _src_path as typed
CATALOG = load_catalog()
FAMILIES = list(CATALOG)
FAMILY_MODELS = [(f, m) for f in FAMILIES for m in CATALOG[f]["models"]]


@pytest.fixture(autouse=True)
def isolated_user_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user copier settings, a fixed git identity, and no LLM keys leaking into tests."""
    settings = tmp_path_factory.mktemp("home") / "copier-settings.yml"
    settings.write_text("{}\n")
    monkeypatch.setenv("COPIER_SETTINGS_PATH", str(settings))
    for var in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        monkeypatch.setenv(var, "Hephaestus Tests")
    for var in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        monkeypatch.setenv(var, "tests@hephaestus.invalid")
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "HEPHAESTUS_LLM_MODEL"):
        setenv(monkeypatch, var, None)


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
