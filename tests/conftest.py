"""Shared fixtures: every test runs isolated from the user's copier settings, git identity and LLM keys,
and from W&B state another test's in-process wandb left behind."""

from __future__ import annotations

import os

import pytest

from .helpers import setenv


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


@pytest.fixture(autouse=True)
def no_wandb_service_left_behind():
    """wandb started in this process (`wandb.Api`, `wandb.init`) exports WANDB_SERVICE; a training subprocess of a
    later test would inherit it and hand its run to that service, whose working folder is not the project's."""
    before = {k for k in os.environ if k.startswith("WANDB_")}
    yield
    for key in [k for k in os.environ if k.startswith("WANDB_") and k not in before]:
        del os.environ[key]
