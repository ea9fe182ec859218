"""nox sessions of the Hephaestus template repository.

    nox -s demo      # generate a demo project from a sample requirement (offline planner) and run its train_smoke
    nox -s tests     # unit tests, then end-to-end tests (generate projects, run their own nox sessions)
    nox -s corpus    # the whole bugfix fault corpus (tests runs one fault per fix mechanism)
    nox -s bench     # bench.py (copy, setup uv vs pip, train_smoke, Lightning vs plain) and planner_bench.py
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
DEMO_DIR = ROOT / "build" / "demo"
DEMO_REQUIREMENT = (
    "Classify handwritten digits from small grayscale scans. Inference must stay under 20 ms per "
    "image on a CPU and accuracy should exceed 95%."
)

nox.options.sessions = ["tests"]
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True


TORCH = "torch==2.13.0+cpu" if sys.platform == "linux" else "torch==2.13.0"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def torch_source() -> list[str]:
    """A local wheel folder (UV_FIND_LINKS / PIP_FIND_LINKS) if there is one, else PyTorch's CPU index.

    Without either, uv would take the CUDA build of torch from PyPI: several GB the framework does
    not need (it only instantiates the generated models to measure them).
    """
    folders = []
    for var in ("UV_FIND_LINKS", "PIP_FIND_LINKS"):
        folders += [f for f in os.environ.get(var, "").replace(os.pathsep, " ").split() if f not in folders]
    if folders:
        return [arg for folder in folders for arg in ("--find-links", folder)]
    return ["--extra-index-url", TORCH_CPU_INDEX, "--index-strategy", "unsafe-best-match"]


def install_framework(session: nox.Session) -> None:
    session.install(TORCH, "-e", ".[test]", *torch_source())


@nox.session
def tests(session: nox.Session) -> None:
    """Lint, unit tests, then the end-to-end tests (args go to both pytest runs)."""
    install_framework(session)
    session.run("ruff", "check", ".")
    session.run("pytest", "-m", "not e2e", *session.posargs)
    session.run("pytest", "-m", "e2e and not corpus", *session.posargs)


@nox.session
def corpus(session: nox.Session) -> None:
    """The whole bugfix fault corpus (13 faults, about 30 min); `nox -s tests` runs one fault per fix mechanism."""
    install_framework(session)
    session.run("pytest", "-m", "corpus or e2e", "tests/test_bugfix.py", "-k", "corpus_fault", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Generate build/demo from a sample requirement (no API key, no network) and run its train_smoke."""
    install_framework(session)
    if DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    session.run(
        "copier", "copy", "--trust", "--defaults", "--vcs-ref", "HEAD",
        "--data", "project_name=digits_demo", "--data", f"requirement={DEMO_REQUIREMENT}",
        str(ROOT), str(DEMO_DIR),
    )
    with session.chdir(DEMO_DIR):
        session.run("nox", "-s", "train_smoke")
    session.log(f"demo project: {DEMO_DIR} (checkpoints/, logs/, README.md)")


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmarks and print the README tables (args go to benchmarks/bench.py; see its --help)."""
    install_framework(session)
    session.run("python", "benchmarks/bench.py", *session.posargs, env={"PYTHONPATH": os.fspath(ROOT)})
    session.run("python", "benchmarks/planner_bench.py", env={"PYTHONPATH": os.fspath(ROOT)})
