"""Chains: one nox session per part of the workflow, running its stages in order and resuming.

    nox -s project   # B1-B4: setup, rules, env_check, train_smoke (bugfix if it fails), bugfix, guidance, validate
    nox -s docker    # C1-C4: docker_env, docker_base, wheelhouse, docker_build, container_check, deploy, monitor

Each step is one of the project's nox sessions; a step with `stages` is followed by those gates
(`python -m validators check --stages ...`). When a step and its gates pass, its record in
.hephaestus/chains.json keeps a fingerprint of its inputs. The next call skips a step whose
record matches its inputs now and whose outputs exist, so a chain that stopped resumes at the
step that failed, and a chain with nothing left to do says so. Inputs exclude the outputs of the
step and of the steps after it (guidance writes configs/experiment/full_ddp.yaml; that is not
a reason to train again).

Stdlib only: the noxfile imports this module in nox's own interpreter.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from . import artifacts as a

REQUIREMENTS = (a.REQUIREMENTS_CPU.path, a.REQUIREMENTS_GPU.path)
CODE = ("src", "configs", "scripts/train.py", "scripts/infer.py", "pyproject.toml")
SERVICE = (*CODE, "scripts/serve.py", "deploy/docker", "requirements-serve.txt", "requirements-runtime.txt")


@dataclass(frozen=True)
class Step:
    session: str                     # the nox session that runs it
    what: str                        # one line for the log
    stages: tuple[str, ...] = ()     # gates checked after it
    inputs: tuple[str, ...] = ()     # files or folders (relative) whose content it depends on
    outputs: tuple[str, ...] = ()    # relative paths or globs that must exist for it to count as done; {env}: the venv
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

CHAINS: dict[str, tuple[Step, ...]] = {"project": PROJECT}


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
        for file in _files(root, rel, exclude):
            digest.update(file.relative_to(root).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def missing_outputs(root: Path, step: Step, env: str) -> list[str]:
    out = []
    for pattern in step.outputs:
        rel = pattern.format(env=env)
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

    def why_not_done(self, step: Step, env: str) -> str:
        """'' when the step is done and still valid; else why it runs."""
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
        return ""

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
