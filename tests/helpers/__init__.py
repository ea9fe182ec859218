"""What the tests share: the template's path and catalog, and rendering it with the real copier."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
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


def render(dst: Path, *, setup: bool = True, **data: Any) -> Path:
    """Generate a project into `dst` from the committed template (vcs_ref=HEAD), no prompts.

    `setup`: then finish it as `nox -s setup` does, with this interpreter as the project venv
    (`python -m validators finish-setup`: tech.md's figures measured, the A3-A4 reports written).
    """
    data.setdefault("project_name", "demo_project")
    copier.run_copy(str(TEMPLATE), dst, data=data, defaults=True, unsafe=True, vcs_ref="HEAD", quiet=True)
    if setup:
        finish_setup(dst)
    return dst


def finish_setup(project: Path) -> str:
    """`python -m validators finish-setup` in `project` with this interpreter; its output (a failure raises)."""
    done = subprocess.run([sys.executable, "-m", "validators", "finish-setup"], cwd=project, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"finish-setup failed in {project}:\n{done.stdout}{done.stderr}")
    return done.stdout


def write_file(path: Path, text: str | bytes, encoding: str = "utf-8") -> Path:
    """Write `text` to `path`, creating its folders (stage outputs live under reports/ and docs/plan/)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding=encoding)
    return path


def git(cwd: Path, *args: str) -> str:
    """`git ARGS` in `cwd` with a fixed identity; its stdout (a failure raises)."""
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout


def release(repo: Path, ref: str, tag: str, message: str) -> Path:
    """This repository's committed tree at `ref` as the whole content of `repo`, committed and tagged `tag`.

    The first call makes a fresh repository; a later one replaces the tree, as a new release does.
    template/validators stays a link, as in this repository.
    """
    if (repo / ".git").is_dir():
        git(repo, "rm", "-rq", ".")
    else:
        repo.mkdir(parents=True, exist_ok=True)
        git(repo, "init", "-q")
    archive = subprocess.run(["git", "archive", ref], cwd=TEMPLATE, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(repo, filter="tar")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    git(repo, "tag", tag)
    return repo
