"""What every job backend speaks: the job to run, its normalised state, and the backend protocol.

    spec = JobSpec(name, workdir, run_dir, log_path, train_args, env)
    submitted = backend.submit(spec)                   # -> Submitted(job_id, url, log_path)
    statuses = backend.query(["123", "124"])           # ONE scheduler query for all of them
    backend.cancel("123")

States are normalised to STATES; the platform's own word and message travel beside them (Status).
A backend raises ClusterError for what a user must fix and TransientError for what may pass on a
retry (poll.py bounds the retries).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Protocol

from ..job_ledger import (  # the states and Status live in the core: the tracking wing reads job ledgers too
    BACKENDS,
    CANCELLED,
    COMPLETED,
    FAILED,
    PENDING,
    RUNNING,
    STATES,
    TERMINAL,
    TIMEOUT,
    Status,
)

__all__ = ["BACKENDS", "CANCELLED", "COMPLETED", "FAILED", "PENDING", "RUNNING", "STATES", "TERMINAL", "TIMEOUT",
           "Backend", "JobSpec", "Status", "Submitted"]


@dataclass(frozen=True)
class JobSpec:
    """A training job. Paths are relative to `workdir`, the project folder as the compute node sees it."""

    name: str                      # the job's name on the scheduler: <project>-<run name>
    workdir: str                   # absolute: the project on shared storage
    run_dir: str                   # runs/<UTC timestamp>-<backend>[-<name>]: exported as HEPHAESTUS_RUN_DIR
    log_path: str                  # <run_dir>/job.log: stdout and stderr of the job
    train_args: tuple[str, ...]    # the arguments of scripts/train.py (overrides, --epochs N)
    env: dict[str, str] = field(default_factory=dict)  # exported before training (WANDB_MODE=offline, ...)

    def train_command(self, launcher: str = "") -> str:
        """`python scripts/train.py ARGS`, after `launcher` (`srun`) when given; shell-quoted."""
        argv = ["python", "scripts/train.py", *self.train_args]
        return (launcher + " " if launcher else "") + shlex.join(argv)

    def prologue(self) -> list[str]:
        """The shell lines before training: cd to the project, activate its .venv, export the environment."""
        lines = [f"cd {shlex.quote(self.workdir)}", "source .venv/bin/activate"]
        lines += [f"export {k}={shlex.quote(v)}" for k, v in sorted(self.env.items())]
        return lines

    def command(self, launcher: str = "") -> str:
        """The whole job as one shell line: `cd DIR && source .venv/bin/activate && export ... && python scripts/train.py ...`."""
        return " && ".join([*self.prologue(), self.train_command(launcher)])


@dataclass(frozen=True)
class Submitted:
    job_id: str
    url: str = ""                 # the platform's page of the job, when it has one


class Backend(Protocol):
    """A place jobs run. `config` is the loaded configs/cluster/<name>.yaml (config.py)."""

    name: str
    workdir: str  # the project folder as the compute node sees it

    def command(self, spec: JobSpec) -> str:
        """The shell the job runs, as the ledger records it (what reaches the scheduler or platform)."""

    def submit(self, spec: JobSpec) -> Submitted:
        """Start the job; ClusterError (with the platform's reason) when it is refused."""

    def query(self, job_ids: list[str]) -> dict[str, Status]:
        """The status of each job, in one query to the scheduler. A job the scheduler no longer knows is
        left out; the caller keeps its last state and says so."""

    def cancel(self, job_id: str) -> None:
        """Ask the scheduler to stop the job; its state becomes CANCELLED on a later query."""
