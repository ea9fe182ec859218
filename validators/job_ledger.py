"""The job ledger: one `jobs/<backend>-<id>.yaml` per job, written atomically, never deleted.

In the core because two wings use it: the cluster wing writes it (submit, job, jobs), the tracking
wing reads it (a job's run folder, URL and commit for results and notes).

    record = JobRecord(backend="slurm", job_id="42", ...)
    record.observe(Status("RUNNING", "RUNNING"))   # True when the state, native state or message changed
    save(root, record)                             # tmp file + os.replace: a reader never sees half a file
    load_all(root)                                 # every job of the project, oldest first

The ledger holds no credential and no token: a backend never hands one to it.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from .artifacts import JOBS
from .errors import ClusterError

PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT = "PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"
STATES = (PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT)
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED, TIMEOUT})
BACKENDS = ("local", "slurm", "qizhi")  # configs/cluster/<backend>.yaml; the first is the default


@dataclass(frozen=True)
class Status:
    """One observation of a job: the normalised `state`, the platform's own `native` state and its message."""

    state: str
    native: str
    message: str = ""

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"state {self.state!r} is not one of {', '.join(STATES)}")

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


def now() -> str:
    """UTC, to the second, ISO 8601: the timestamps of the job ledgers and of the sync ledger."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class JobRecord:
    backend: str
    job_id: str
    name: str
    command: str                    # the shell line (or the sbatch script's training line) the job runs
    commit: str                     # git HEAD at submission
    dirty: bool                     # submitted with --allow-dirty from a tree with uncommitted changes
    config_hash: str                # sha256 of the composed training config (train.py --print-config)
    run_dir: str                    # relative to the project: the job's run folder
    log_path: str                   # relative to the project: the job's stdout and stderr
    url: str = ""                   # the platform's page of the job
    submitted_at: str = field(default_factory=now)
    train_args: list[str] = field(default_factory=list)
    history: list[dict[str, str]] = field(default_factory=list)  # {at, state, native, message}, oldest first

    @property
    def key(self) -> str:
        return f"{self.backend}-{self.job_id}"

    @property
    def state(self) -> str:
        return self.history[-1]["state"] if self.history else "PENDING"

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    @property
    def succeeded(self) -> bool:
        return self.state == COMPLETED

    def observe(self, status: Status, at: str | None = None) -> bool:
        """Append `status` to the history when it differs from the last entry; True when it did."""
        entry = {"state": status.state, "native": status.native, "message": status.message}
        if self.history and {k: self.history[-1].get(k, "") for k in entry} == entry:
            return False
        self.history.append({"at": at or now(), **entry})
        return True

    def since(self) -> str:
        return self.history[-1]["at"] if self.history else self.submitted_at


def path_of(root: Path, backend: str, job_id: str) -> Path:
    return root / JOBS.path / f"{backend}-{job_id}.yaml"


def save(root: Path, record: JobRecord) -> Path:
    """Write the record atomically (a temporary file in the same folder, then os.replace)."""
    path = path_of(root, record.backend, record.job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    text = f"# {JOBS.what}; written by `python -m validators submit|job|jobs`, never edited by hand\n"
    text += yaml.safe_dump(asdict(record), sort_keys=False, allow_unicode=True, width=1000)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def load(path: Path) -> JobRecord:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ClusterError(f"{path}: cannot read the job ledger: {err}", "restore it from git") from err
    known = {f.name for f in fields(JobRecord)}
    if not isinstance(data, dict) or not {"backend", "job_id"} <= set(data):
        raise ClusterError(f"{path}: not a job ledger (no backend and job_id)", "restore it from git")
    extra = sorted(set(data) - known)
    if extra:
        raise ClusterError(f"{path}: unknown key(s) {', '.join(extra)} in a job ledger", "restore it from git")
    data["job_id"] = str(data["job_id"])
    return JobRecord(**data)


def load_all(root: Path) -> list[JobRecord]:
    """Every ledger of the project, oldest submission first."""
    folder = root / JOBS.path
    records = [load(p) for p in sorted(folder.glob("*.yaml"))] if folder.is_dir() else []
    return sorted(records, key=lambda r: (r.submitted_at, r.key))


def find(root: Path, ident: str) -> JobRecord:
    """The job `ident` names: `<backend>-<id>` or the bare id when one backend has it."""
    folder = root / JOBS.path
    exact = folder / f"{ident}.yaml"
    matches = [exact] if exact.is_file() else sorted(folder.glob(f"*-{ident}.yaml")) if folder.is_dir() else []
    if len(matches) == 1:
        return load(matches[0])
    known = ", ".join(r.key for r in load_all(root)) or "none yet"
    if not matches:
        raise ClusterError(f"no job {ident!r} in {JOBS.path}/", f"the known jobs: {known}")
    raise ClusterError(f"job id {ident!r} is ambiguous: {', '.join(p.stem for p in matches)}", "give it as <backend>-<id>")


def as_dict(record: JobRecord) -> dict[str, Any]:
    return asdict(record)
