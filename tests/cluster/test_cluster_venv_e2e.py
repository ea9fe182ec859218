"""Stage D2 for real: a generated project's `nox -s cluster_venv` builds `.venv` inside the local base image
(Docker), the project moves to another absolute path, and training runs from that `.venv` in a container of the
same image with no network, mounted at the new path; the check there finds no path of the build, and catches a
planted absolute `.pth`.

Where the wheels come from: torch's CPU build from $PIP_FIND_LINKS (mounted read-only into the build container),
everything else from PyPI over Docker's default network; this host inspects TLS, so the build hands the container
the host's CA bundle. The debug venv `nox -s cluster_venv` runs in is this test's interpreter (a two-line
wrapper at .venvs/debug-cpu/bin/python): the session needs only the validators from it, and a second torch install
would double the test's time without testing anything of D2.

One generated project (tabular regression, the smallest); each test relies on the ones before it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..helpers import render, write_file

pytestmark = [pytest.mark.e2e, pytest.mark.docker]
BASE = "local/bookworm-python:base"
INTERPRETER = "/usr/bin/python3.11"  # the base image's python3.11 (Debian bookworm)


def run(cmd: list[str], cwd: Path, timeout: int = 1200, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for var in ("VIRTUAL_ENV", "CLUSTER_IMAGE", "PROJECT_ENV", "UV_OFFLINE"):
        env.pop(var, None)
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
    return done


def files_of(root: Path) -> set[str]:
    """Every path of the project but the two venvs and bytecode caches (nox importing noxfile.py and validators/
    writes those where PYTHONDONTWRITEBYTECODE is unset, as in CI): what the build must leave as it was."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.relative_to(root).parts[0] not in (".venv", ".venvs") and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if subprocess.run(["docker", "version"], capture_output=True).returncode != 0:
        pytest.skip("no Docker engine answers `docker version`: D2 builds the .venv inside an image")
    root = render(tmp_path_factory.mktemp("build_host") / "demo_project", setup=False, task_family="tabular_regression")
    if subprocess.run(["docker", "image", "inspect", BASE], capture_output=True).returncode != 0:
        run([sys.executable, "-m", "validators", "docker-base"], root)
    python = write_file(root / ".venvs/debug-cpu/bin/python", f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    before = files_of(root)
    start = time.monotonic()
    done = run([sys.executable, "-m", "nox", "-s", "cluster_venv", "--", "--image", BASE], root)
    wall = round(time.monotonic() - start, 1)
    record = json.loads((root / ".venv/hephaestus-venv.json").read_text())
    print(f"\nD2 .venv build (nox -s cluster_venv in {BASE}): {wall} s wall, {record['build_seconds']} s build, "
          f"{record['size_bytes']} bytes ({record['size_bytes'] / 2**30:.2f} GiB), {record['files']} files")
    return {"root": root, "out": done.stdout + done.stderr, "record": record, "before": before, "after": files_of(root)}


@pytest.fixture(scope="module")
def moved(built: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project moved, .venv and all, to another absolute path (shared storage, as a node sees it)."""
    return Path(shutil.move(built["root"], tmp_path_factory.mktemp("shared_storage") / "projects" / "demo_project"))


def in_image(project: Path, command: str) -> subprocess.CompletedProcess:
    """`command` in bash in a container of the base image with no network, the project mounted at its own path."""
    return run(["docker", "run", "--rm", "--network=none", "--user", f"{os.getuid()}:{os.getgid()}", "-e", "HOME=/tmp",
                "-e", "WANDB_MODE=offline", "-v", f"{project}:{project}", "-w", str(project), BASE, "bash", "-c", command], project)


def test_cluster_venv_builds_in_the_image_and_leaves_the_project_as_it_was(built):
    out, record, root = built["out"], built["record"], built["root"]
    for phase in ("[1/6] uv:", "[2/6] wheel:", "[3/6] venv:", "[4/6] install: requirements-cpu.txt", "[5/6] project: demo_project-0.1.0",
                  "[6/6] record:"):
        assert f"\n{phase}" in out, phase
    assert f"nodes need {INTERPRETER} (Python 3.11): the interpreter of the image {BASE}\n" in out
    assert os.readlink(root / ".venv/bin/python") == INTERPRETER
    assert (record["interpreter"], record["image"], record["env"], record["requirements"]) == (INTERPRETER, BASE, "debug-cpu",
                                                                                              "requirements-cpu.txt")
    assert record["python"].startswith("3.11.") and record["image_id"].startswith("sha256:") and record["files"] > 10000
    assert built["after"] == built["before"], "the build wrote into the project outside .venv (a cache, build/, egg-info?)"
    assert not Path(record["build_tmp"]).exists()
    owners = {os.lstat(os.path.join(d, f)).st_uid for d, _, files in os.walk(root / ".venv") for f in files}
    assert owners == {os.getuid()}


def test_after_a_move_training_runs_from_the_venv_in_the_image_without_network(moved):
    job = in_image(moved, "source .venv/bin/activate && python -c 'import sys, torch, yaml; print(sys.prefix, torch.__version__, "
                          "yaml.safe_load.__code__.co_filename)' && python scripts/train.py --fast-dev-run")
    site = f"{moved}/.venv/lib/python3.11/site-packages"
    # the .pyc files hold the build path as co_filename; importing one puts the path it was loaded from there
    assert job.stdout.splitlines()[0] == f"{moved}/.venv 2.13.0+cpu {site}/yaml/__init__.py"
    summary = json.loads(job.stdout[job.stdout.index("\n{"):])
    assert (summary["run_dir"], summary["global_step"]) == (None, 1) and "test/loss" in summary["metrics"], summary


def test_at_the_new_path_the_check_passes_and_no_file_names_the_build_path(moved, built):
    check = run([sys.executable, "-m", "validators", "venv-check"], moved)
    assert check.stdout.splitlines()[0] == f"nodes need {INTERPRETER} (Python 3.11): the interpreter of the image {BASE}"
    assert check.stdout.splitlines()[-1] == ".venv: relocatable, no path of the build, matches its requirement file"
    # grep reads the binaries too; bytecode is left out: its co_filename is replaced on import (the test above)
    grep = run(["grep", "-rlF", "--exclude=hephaestus-venv.json", "--exclude=*.pyc", str(built["root"]), ".venv"], moved,
               check=False)
    assert (grep.returncode, grep.stdout) == (1, ""), "a file names the build path"
    again = run([sys.executable, "-m", "nox", "-s", "cluster_venv", "--", "--image", BASE], moved)
    assert f".venv is up to date (debug-cpu, {BASE} interpreter); kept (--force rebuilds it)" in again.stdout


def test_the_check_catches_a_planted_absolute_pth(moved):
    write_file(moved / ".venv/lib/python3.11/site-packages/planted.pth", "/opt/shared/src\n")
    error = (".venv/lib/python3.11/site-packages/planted.pth: line 1: '/opt/shared/src' is invalid: expected a path relative "
             "to site-packages: an absolute .pth entry breaks when the project moves (hint: an editable install writes one: "
             "install the project non-editable (nox -s cluster_venv does))")
    check = run([sys.executable, "-m", "validators", "venv-check"], moved, check=False)
    assert (check.returncode, check.stdout.splitlines()[1:]) == (1, [error, ".venv: 1 error(s)"])
    gate = run([sys.executable, "-m", "validators", "check", "--stages", "D2"], moved, check=False)
    assert (gate.returncode, gate.stdout) == (1, f"{error}\n1 error(s) in stages D2\n")
