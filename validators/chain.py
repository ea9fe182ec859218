"""Chains: one nox session per part of the workflow, running its stages in order and resuming.

    nox -s project   # B1-B4: setup, rules, env_check, train_smoke (bugfix if it fails), bugfix, guidance, validate
    nox -s docker    # C1-C4: docker_env, docker_base, wheelhouse, docker_build, container_check, deploy, monitor

Each step is one of the project's nox sessions; a step with `stages` is followed by those gates
(`python -m validators check --stages ...`). When a step and its gates pass, its record in
.hephaestus/chains.json keeps a fingerprint of its inputs. The next call skips a step whose
record matches its inputs now, whose outputs exist and whose probe (a callable the noxfile passes,
for a result that is not a file: an image, a running service) finds it still there, so a chain
that stopped resumes at the step that failed, and a chain with nothing left to do says so. Inputs
are files, folders, or `$NAME` (an environment variable's value); they exclude the outputs of the
step and of the steps after it (guidance writes configs/experiment/full_ddp.yaml; that is not
a reason to train again). A chain may need a file an earlier chain makes (NEEDS): without it,
it stops at its first step and says which chain makes it.

Stdlib only: the noxfile imports this module in nox's own interpreter.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import artifacts as a

REQUIREMENTS = (a.REQUIREMENTS_CPU.path, a.REQUIREMENTS_GPU.path)
CODE = ("src", "configs", "scripts/train.py", "scripts/infer.py", "pyproject.toml")
IMAGE_PINS = "deploy/docker/requirements.txt"  # the image's runtime pins, constrained by REQUIREMENTS
# what docker_build copies into the image or installs in it (deploy/docker/Dockerfile.<variant>)
IMAGE = ("src", "configs", "scripts/serve.py", "deploy/docker/Dockerfile.cpu", "deploy/docker/Dockerfile.gpu",
         IMAGE_PINS, *REQUIREMENTS, ".dockerignore", "$BASE_IMAGE")


@dataclass(frozen=True)
class Step:
    session: str                     # the nox session that runs it
    what: str                        # one line for the log
    stages: tuple[str, ...] = ()     # gates checked after it
    inputs: tuple[str, ...] = ()     # files or folders (relative) whose content it depends on; $NAME: a variable's value
    outputs: tuple[str, ...] = ()    # relative paths or globs that must exist for it to count as done; {env}: the venv,
                                     # {variant}: cpu or gpu (the venv's, debug-<variant>)
    fallback: str = ""               # a session to run when this step fails; if it passes, this step runs again


PROJECT: tuple[Step, ...] = (
    Step("setup", "the project venv, then tech.md's figures and the A3-A4 reports measured in it",
         inputs=(*REQUIREMENTS, "pyproject.toml"),
         outputs=(f"{a.VENVS.path}/{{env}}/pyvenv.cfg", a.BUILD_LOG.path, a.REVIEW.path)),
    Step("rules", "B1: CLAUDE.md's rules customised or inherited (inherited when there is no terminal)", ("B1",),
         inputs=(a.CLAUDE.path,), outputs=("CLAUDE.*.md",)),
    Step("env_check", "B2: the venv against its pins, the mini data, the notebook headless", ("B2",),
         inputs=(*REQUIREMENTS, a.MINI_DATA.path, "scripts/explore_mini.ipynb"),
         outputs=(a.ENV_CHECK.path, a.MINI_DATASET.path, a.NOTEBOOK_RUN.path)),
    Step("train_smoke", "fast_dev_run, 1 epoch, infer.py on the checkpoint", (),
         inputs=(*REQUIREMENTS, *CODE, a.MINI_DATA.path), outputs=(a.RUN_SUMMARY.path,), fallback="bugfix"),
    Step("bugfix", "B3: the 1-epoch validation, and fixes when it fails", ("B3",),
         inputs=(*REQUIREMENTS, *CODE, a.MINI_DATA.path), outputs=(a.BUGFIX_REPORT.path,)),
    Step("guidance", "B4: full-training guidance, the DDP experiment, the launch scripts", ("B4",),
         inputs=(*CODE, a.TECH.path, a.REQUIREMENTS.path),
         outputs=(a.GUIDANCE.path, a.FULL_TRAINING.path, a.LAUNCH_SLURM.path, a.LAUNCH_TORCHRUN.path)),
    Step("validate", "every gate reached: A1-A5, B1-B4",
         inputs=(*REQUIREMENTS, *CODE, a.MINI_DATA.path, "docs", a.REPORTS.path, a.CLAUDE.path, "CLAUDE.local.md",
                 "CLAUDE.inherited.md", a.README.path, "scripts", "noxfile.py")),
)

# The noxfile's probes (validators/docker/live.py) check what is not a file: docker_env, the engine answers;
# docker_build, the image exists; container_check, its log is of that image; deploy, the service runs that
# image and answers /health. docker_base is skipped, as not needed, while a base image is there or BASE_IMAGE is set.
DOCKER: tuple[Step, ...] = (
    Step("docker_env", "C1: engine, Compose, BuildKit, GPU passthrough; what is missing and how to install it",
         outputs=(a.DOCKER_ENV.path,)),
    Step("docker_base", "C2: the air-gapped base image, debootstrap + `docker import` (root)"),
    Step("wheelhouse", "C2: every pin of the image as a wheel in wheelhouse/<variant>/ (needs PyPI once)",
         inputs=(*REQUIREMENTS, IMAGE_PINS), outputs=(f"{a.WHEELHOUSE.path}/{{variant}}/*.whl",)),
    Step("docker_build", "C2: hadolint, then the image built with --network=none from the wheelhouse", inputs=IMAGE),
    Step("container_check", "C2: torch, the model load and the service import, inside the image",
         inputs=(a.CHECKPOINT.path,), outputs=(a.CONTAINER_CHECK.path,)),
    Step("deploy", "C3: compose up, endpoints, smoke tests, latency/throughput/memory against the SLA",
         inputs=(a.CHECKPOINT.path, a.REQUIREMENTS.path, "deploy/docker/docker-compose.yml", "$PORT", "$MAX_BATCH_SIZE"),
         outputs=(a.DEPLOY_REPORT.path,)),
    Step("monitor", "C4: scrape the running service, SLA drift, alerts + dashboard, README requirement status", ("C4",),
         inputs=(a.DEPLOY_REPORT.path, a.REQUIREMENTS.path), outputs=(a.RUNNING_REPORT.path, a.MONITORING.path)),
)

CHAINS: dict[str, tuple[Step, ...]] = {"project": PROJECT, "docker": DOCKER}
# The stage group each chain runs in order, for the hints of stage outputs that are missing.
GROUPS: dict[str, str] = {"project": "B1-B4", "docker": "C1-C4"}


def chain_of(stage: str) -> tuple[str, str] | None:
    """('project', 'B1-B4'): the chain that runs `stage` and its stage group; None for a stage no chain runs."""
    return next(((name, group) for name, group in GROUPS.items() if stage[:1] == group[0]), None)
# What a chain needs from another before its first step: (path, what to run to make it).
NEEDS: dict[str, tuple[tuple[str, str], ...]] = {
    "docker": ((a.CHECKPOINT.path, "the image serves the project chain's 1-epoch checkpoint: run `nox -s project` first "
                                   "(`nox -s train_smoke` alone makes one, without the B gates)"),),
}


def unmet_needs(root: Path, chain: str) -> str:
    """'' when chain `chain` has what it needs from the others; else what is missing and what to run."""
    return next((f"{rel} is missing: {advice}" for rel, advice in NEEDS.get(chain, ()) if not (root / rel).is_file()), "")


def _files(root: Path, rel: str, exclude: frozenset[str]) -> list[Path]:
    path = root / rel
    if rel in exclude or not path.exists():
        return []
    if path.is_file():
        return [path]
    out = []
    for folder, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in a.SKIP_ANYWHERE)
        for name in sorted(names):
            file = Path(folder, name)
            if file.relative_to(root).as_posix() not in exclude and not name.endswith((".pyc", ".tmp")):
                out.append(file)
    return out


def fingerprint(root: Path, steps: tuple[Step, ...], step: Step) -> str:
    """sha256 over the paths and contents of the step's inputs, less the outputs of it and later steps."""
    later = steps[steps.index(step):]
    exclude = frozenset(o for s in later for o in s.outputs if "*" not in o and "{" not in o)
    digest = hashlib.sha256()
    for rel in step.inputs:
        if rel.startswith("$"):
            digest.update(f"{rel}={os.environ.get(rel[1:], '')}".encode() + b"\0")
            continue
        for file in _files(root, rel, exclude):
            digest.update(file.relative_to(root).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def missing_outputs(root: Path, step: Step, env: str) -> list[str]:
    out = []
    for pattern in step.outputs:
        rel = pattern.format(env=env, variant=env.rpartition("-")[2])
        if not (any(root.glob(rel)) if "*" in rel else (root / rel).exists()):
            out.append(rel)
    return out


class State:
    """The records of one chain in .hephaestus/chains.json."""

    def __init__(self, root: Path, chain: str):
        self.root, self.chain, self.steps = root, chain, CHAINS[chain]
        self.path = root / a.CHAIN_STATE.path

    def _load(self) -> dict:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _save(self, data: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(self.path)

    def why_not_done(self, step: Step, env: str, probe: Callable[[], str] | None = None) -> str:
        """'' when the step is done and still valid; else why it runs. `probe`, asked last, says why a result
        that is not a file (an image, a running service) no longer counts, or ''."""
        record = self._load().get(self.chain, {}).get(step.session)
        if record is None:
            return "not run yet"
        if record.get("env") != env:
            return f"last run for {record.get('env')}, now {env}"
        missing = missing_outputs(self.root, step, env)
        if missing:
            return f"{', '.join(missing)} missing"
        if record.get("fingerprint") != fingerprint(self.root, self.steps, step):
            return "its inputs changed"
        return probe() if probe else ""

    def record(self, step: Step, env: str) -> None:
        data = self._load()
        data.setdefault(self.chain, {})[step.session] = {
            "fingerprint": fingerprint(self.root, self.steps, step), "env": env,
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        self._save(data)

    def forget(self, step: Step) -> None:
        data = self._load()
        if data.get(self.chain, {}).pop(step.session, None) is not None:
            self._save(data)
