"""Submitting a training job: the review before compute, then the backend, then the ledger.

    backend = backend_for("slurm", root)
    record = submit(project, "slurm", ["trainer=ddp_cpu"], gate_table=table)   # raises SubmitRefused: nothing submitted

The review before compute (`review`) collects every problem at once, then nothing is submitted if
there is one: the backend's config (configs/cluster/<backend>.yaml), the training overrides (the
config composes, typed and range-checked), the stage-A gates, W&B offline with no API key in a config or
job (gate D1), the `.venv` check and the pretrained weights of the composed config's model, every file's
sha256 as fetched (D2), and a clean git tree (`--allow-dirty` submits anyway and the ledger
says so). Each gate runs from the table the CLI hands in (`gate_table`): this wing imports no other.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import gates
from .. import job_ledger as ledger
from ..artifacts import CLUSTER_CONFIGS, JOBS, RUNS
from ..errors import ClusterError, GateError
from ..job_ledger import JobRecord
from ..project import Project
from . import config as cluster_config
from .jobs import BACKENDS, PENDING, Backend, JobSpec, Status
from .weights_gate import composed_model_errors

TRAIN_SCRIPT = "scripts/train.py"
OFFLINE_ENV = {"WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
RUN_DIR_ENV = "HEPHAESTUS_RUN_DIR"  # the run folder the project's runs.py uses (tests check the two agree)
REVIEW_GATES = ("A", "D1", "D2")  # the stages whose gates the review runs: A, W&B offline and no key (D1), .venv (D2)


def backend_for(name: str, root: Path, cfg: dict[str, Any] | None = None) -> Backend:
    """The backend `name` with its settings (configs/cluster/<name>.yaml unless `cfg` is given)."""
    if name not in BACKENDS:
        raise cluster_config.unknown_backend(name)
    cfg = cfg if cfg is not None else cluster_config.load(root, name)
    if name == "local":
        from .local import LocalBackend

        return LocalBackend(cfg, root)
    if name == "slurm":
        from .slurm import SlurmBackend

        return SlurmBackend(cfg, root)
    from .qizhi import QizhiBackend

    return QizhiBackend(cfg, root)


class SubmitRefused(ClusterError):
    """The review before compute found problems: every one of them, one per line; nothing was submitted."""

    def __init__(self, errors: Sequence[GateError | str]):
        self.errors = list(errors)
        lines = "\n".join(f"  {e}" for e in self.errors)
        super().__init__(f"nothing was submitted: the review before compute found {len(self.errors)} problem(s):\n{lines}")


@dataclass(frozen=True)
class Reviewed:
    commit: str
    dirty: bool
    config_hash: str


def composed_config(root: Path, train_args: Sequence[str]) -> tuple[str, str]:
    """(the config's text, error) from `scripts/train.py ARGS --print-config` in this interpreter (the project venv):
    the overrides are checked by the project's own typed config before any compute is asked for."""
    done = subprocess.run([sys.executable, TRAIN_SCRIPT, *train_args, "--print-config"], cwd=root, capture_output=True,
                          text=True, timeout=300)
    if done.returncode != 0:
        lines = [x for x in (done.stderr or done.stdout).strip().splitlines() if x.strip()]
        return "", lines[-1] if lines else f"exit {done.returncode}"
    return done.stdout, ""


def git_state(root: Path) -> tuple[str, list[str]]:
    """(HEAD's commit, the changed files outside jobs/); ('', [reason]) when the project is not a git work tree."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)

    head = git("rev-parse", "HEAD")
    if head.returncode != 0:
        return "", [f"not a git repository with a commit ({head.stderr.strip().splitlines()[-1] if head.stderr.strip() else ''})"]
    status = git("status", "--porcelain", "--untracked-files=normal", "--", ".", f":(exclude){JOBS.path}")
    return head.stdout.strip(), [line[3:] for line in status.stdout.splitlines()]


def review(project: Project, train_args: Sequence[str], *, allow_dirty: bool,
           gate_table: Callable[[], gates.Table] | None,
           config_errors: Sequence[GateError]) -> tuple[Reviewed, list[GateError | str]]:
    """Every reason not to submit (`config_errors`: configs/cluster/<backend>.yaml's, checked once by the caller),
    and what the ledger records when there is none."""
    root = project.root
    problems: list[GateError | str] = list(config_errors)
    text, error = composed_config(root, train_args)
    if error:
        problems.append(f"{TRAIN_SCRIPT} {' '.join(train_args)}: {error}")
    else:
        problems += composed_model_errors(project, text)
    if os.environ.get("WANDB_MODE", "offline") not in ("offline", "disabled", "dryrun"):
        problems.append(f"WANDB_MODE={os.environ['WANDB_MODE']} in this shell: expected offline (the job runs offline; "
                        "unset it so the review matches the job)")
    if gate_table is not None:
        table = gate_table()
        problems += gates.run(project, [s for s in REVIEW_GATES if any(k.startswith(s) for k in table)], table)
    commit, changed = git_state(root)
    if not commit and not allow_dirty:
        problems.append(f"{changed[0]}: the ledger records the commit each job ran (`git init && git add -A && "
                        "git commit`, or --allow-dirty, which the ledger records as commit none)")
    elif changed and not allow_dirty:
        shown = ", ".join(changed[:8]) + (f" and {len(changed) - 8} more" if len(changed) > 8 else "")
        problems.append(f"the git tree is not clean ({shown}): commit first, so the job's commit is its code "
                        "(or --allow-dirty, which the ledger records)")
    digest = hashlib.sha256(text.encode()).hexdigest()
    return Reviewed(commit or "none", bool(changed), digest), list(dict.fromkeys(problems))  # D2 may repeat the model's


def new_spec(project: Project, backend: Backend, train_args: Sequence[str], name: str | None) -> JobSpec:
    """The job: a new run folder runs/<UTC timestamp>-<backend>[-<name>], its log, the offline environment."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    run_name = f"{stamp}-{backend.name}" + (f"-{name}" if name else "")
    run_dir = f"{RUNS.path}/{run_name}"
    env = {**OFFLINE_ENV, RUN_DIR_ENV: run_dir}
    slug = project.answers.get("project_name", project.root.name)
    return JobSpec(f"{slug}-{run_name}", backend.workdir, run_dir, f"{run_dir}/job.log", tuple(train_args), env)


def submit(project: Project, backend_name: str, overrides: Sequence[str], *, allow_dirty: bool = False,
           name: str | None = None, gate_table: Callable[[], gates.Table] | None = None,
           report: Callable[[str], None] = print) -> JobRecord:
    """Review, submit, record. The backend's `overrides` come first, then the command line's."""
    root = project.root
    if backend_name not in BACKENDS:
        raise cluster_config.unknown_backend(backend_name)
    cfg_errors = list(cluster_config.check(root, backend_name))
    cfg = {} if cfg_errors else cluster_config.load(root, backend_name)
    train_args = [*cfg.get("overrides", []), *overrides]
    reviewed, problems = review(project, train_args, allow_dirty=allow_dirty, gate_table=gate_table,
                                config_errors=cfg_errors)
    if problems:
        raise SubmitRefused(problems)
    backend = backend_for(backend_name, root, cfg)
    spec = new_spec(project, backend, train_args, name)
    report(f"review before compute: passed ({CLUSTER_CONFIGS.path}/{backend_name}.yaml, overrides, "
           f"gates A, D1 and D2, git {reviewed.commit[:12]}{' dirty' if reviewed.dirty else ''})")
    (root / spec.run_dir).mkdir(parents=True, exist_ok=True)
    submitted = backend.submit(spec)
    record = JobRecord(backend=backend_name, job_id=submitted.job_id, name=spec.name, command=backend.command(spec),
                       commit=reviewed.commit, dirty=reviewed.dirty, config_hash=reviewed.config_hash,
                       run_dir=spec.run_dir, log_path=spec.log_path, url=submitted.url, train_args=list(train_args))
    record.observe(Status(PENDING, "submitted", f"{backend_name} accepted the job"))
    path = ledger.save(root, record)
    report(f"submitted {record.key}: run folder {record.run_dir}, log {record.log_path}, "
           f"ledger {path.relative_to(root).as_posix()}" + (f", {record.url}" if record.url else ""))
    return record
