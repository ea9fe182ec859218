"""The command line of stages D2 and D4 (`python -m validators <command>`; nox sessions run them).

    cluster-venv [--image IMAGE]                                D2: build .venv: relocatable, cache-free, in the job's image
    venv-check                                                  D2: the interpreter the nodes need; why .venv would break
    submit [--backend local|slurm|qizhi] [--wait] [OVERRIDES]   D4: review before compute, submit, jobs/<backend>-<id>.yaml
    job status|wait|logs|cancel ID                              D4: one job (ID: <backend>-<id> or the bare id)
    jobs                                                        D4: every job of the project, open ones refreshed

Exit status of `submit --wait` and `job wait`: 0 when the job COMPLETED, 1 when it ended otherwise
(FAILED, CANCELLED, TIMEOUT), 3 when the wait limit passed and the job is still running.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from .. import job_ledger as ledger
from ..artifacts import CLUSTER_VENV, JOBS
from ..errors import ClusterError
from ..job_ledger import JobRecord
from ..pins import ENVIRONMENTS
from ..project import Project
from . import config as cluster_config
from . import poll
from .jobs import BACKENDS
from .submit import backend_for, submit

STILL_RUNNING = 3
DEFAULT_LIMIT_S = float(os.environ.get("HEPHAESTUS_WAIT_LIMIT_S", 24 * 3600))


def register(sub: Any) -> None:
    """Add the D2 and D4 subcommands to the validators' argument parser."""
    build = sub.add_parser("cluster-venv", help="build .venv for the cluster jobs: relocatable, cache-free, in the job's image (D2)")
    build.add_argument("--image", default=os.environ.get("CLUSTER_IMAGE") or None,
                       help="build inside this image, whose interpreter the nodes run (default: $CLUSTER_IMAGE; "
                            "none: the host's interpreter)")
    build.add_argument("--env", choices=list(ENVIRONMENTS), help="the requirement file (default: $PROJECT_ENV, else the accelerator's)")
    build.add_argument("--force", action="store_true", help="rebuild even when the .venv is up to date")
    build.set_defaults(handler=cluster_venv)
    check = sub.add_parser("venv-check", help="check .venv: no absolute build paths, no editable install, no drift (D2)")
    check.set_defaults(handler=venv_check)
    p = sub.add_parser("submit", help="D4: review before compute, then submit a training job (jobs/<backend>-<id>.yaml)")
    p.add_argument("--backend", default=BACKENDS[0], help=f"where the job runs: {', '.join(BACKENDS)} (default: {BACKENDS[0]})")
    p.add_argument("--allow-dirty", action="store_true", help="submit from a tree with uncommitted changes (recorded)")
    p.add_argument("--name", help="a suffix of the run folder: runs/<UTC timestamp>-<backend>-<name>")
    p.add_argument("--wait", action="store_true", help="then poll until the job ends (exit 0 only if it COMPLETED)")
    p.add_argument("--limit", type=float, default=DEFAULT_LIMIT_S, help="seconds --wait polls before it gives up (job left running)")
    p.add_argument("--epochs", type=int, help="passed on to scripts/train.py (trainer.max_epochs)")
    p.add_argument("overrides", nargs="*", help="scripts/train.py overrides (key=value, group=choice); after `--`, any of its options")
    p.set_defaults(handler=submit_command)
    p = sub.add_parser("job", help="D4: status, wait, logs or cancel of one job")
    p.add_argument("action", choices=["status", "wait", "logs", "cancel"])
    p.add_argument("id", help="<backend>-<id> (the ledger's file name) or the bare job id")
    p.add_argument("--limit", type=float, default=DEFAULT_LIMIT_S, help="wait: seconds before it gives up (job left running)")
    p.add_argument("--lines", type=int, default=40, help="logs: how many of the last lines")
    p.set_defaults(handler=job_command)
    p = sub.add_parser("jobs", help="D4: every job of the project and its state (open jobs asked once per backend)")
    p.add_argument("--no-refresh", action="store_true", help="print the ledger as it is, without asking any scheduler")
    p.set_defaults(handler=jobs_command)


def cluster_venv(project: Project, args: argparse.Namespace) -> int:
    from .venv_build import build, default_env

    build(project, args.env or default_env(project), args.image or None, force=args.force)
    return 0


def venv_check(project: Project, args: argparse.Namespace) -> int:
    from .venv_check import notes, rule_cluster_venv

    for line in notes(project):
        print(line)
    errors = list(rule_cluster_venv(project))
    for error in errors:
        print(error)
    print(f"{CLUSTER_VENV.path}: {len(errors)} error(s)" if errors else f"{CLUSTER_VENV.path}: relocatable, no path of the "
          "build, matches its requirement file")
    return 1 if errors else 0


def _intervals(backend: str, root: Path) -> dict[str, float]:
    cfg = cluster_config.load(root, backend)
    return {"initial_s": cfg["poll_initial_s"], "max_s": cfg["poll_max_s"], "retries": cfg["retries"]}


def _wait(root: Path, record: JobRecord, limit: float) -> int:
    backend = backend_for(record.backend, root)
    settings = _intervals(record.backend, root)
    print(f"{record.key}: waiting (poll every {settings['initial_s']:g} s doubling to {settings['max_s']:g} s, "
          f"limit {limit:g} s); it is {record.state}")
    counter, start = poll.Counter(), time.monotonic()
    ended = poll.wait(root, backend, [record], limit_s=limit, counter=counter, **settings)
    cost = f"{counter.queries} {record.backend} queries in {time.monotonic() - start:.0f} s"
    if not ended:
        print(f"{record.key}: still {record.state} after {limit:g} s: left running "
              f"(`python -m validators job wait {record.key}` waits again; {cost})")
        return STILL_RUNNING
    print(f"{record.key}: {record.state}; run folder {record.run_dir}, log {record.log_path} ({cost})")
    if not record.succeeded:
        print(tail(root, record, 20))
    return 0 if record.succeeded else 1


def tail(root: Path, record: JobRecord, lines: int) -> str:
    path = root / record.log_path
    if not path.is_file():
        where = f" ({record.url})" if record.url else ""
        return f"{record.log_path}: no log here yet (the job writes it on the node's storage{where})"
    # a progress bar rewrites its line with \r: keep what a terminal would show, the last frame of each line
    text = [line.rsplit("\r", 1)[-1] for line in path.read_text(encoding="utf-8", errors="replace").split("\n")]
    text = text[:-1] if text and not text[-1] else text
    return "\n".join([f"==> {record.log_path} (last {min(lines, len(text))} of {len(text)} lines) <==", *text[-lines:]])


def submit_command(project: Project, args: argparse.Namespace) -> int:
    overrides = [a for a in args.overrides if a != "--"] + (["--epochs", str(args.epochs)] if args.epochs is not None else [])
    record = submit(project, args.backend, overrides, allow_dirty=args.allow_dirty, name=args.name,
                    gate_table=args.gate_table)
    return _wait(project.root, record, args.limit) if args.wait else 0


def job_command(project: Project, args: argparse.Namespace) -> int:
    root = project.root
    record = ledger.find(root, args.id)
    if args.action == "wait":
        return _wait(root, record, args.limit)
    if args.action == "logs":
        print(tail(root, record, args.lines))
        return 0
    backend = backend_for(record.backend, root)
    if args.action == "cancel":
        if record.terminal:
            raise ClusterError(f"{record.key} has already ended ({record.state})", "nothing to cancel")
        backend.cancel(record.job_id)
        print(f"{record.key}: cancel sent to {record.backend}")
    poll.refresh(root, backend, [record], report=lambda _: None, **_intervals(record.backend, root))
    print(status_line(record))
    for entry in record.history:
        print(f"  {entry['at']}  {entry['state']:<9} [{entry['native']}] {entry.get('message', '')}".rstrip())
    return 0


def status_line(record: JobRecord) -> str:
    dirty = " (dirty tree)" if record.dirty else ""
    return (f"{record.key}: {record.state} since {record.since()}; commit {record.commit[:12]}{dirty}; "
            f"run {record.run_dir}" + (f"; {record.url}" if record.url else ""))


def jobs_command(project: Project, args: argparse.Namespace) -> int:
    root = project.root
    records = ledger.load_all(root)
    if not records:
        print(f"no jobs yet: `python -m validators submit` (nox -s submit) records each one in {JOBS.path}/")
        return 0
    if not args.no_refresh:
        by_backend: dict[str, list[JobRecord]] = defaultdict(list)
        for record in records:
            if not record.terminal:
                by_backend[record.backend].append(record)
        for name, open_jobs in by_backend.items():  # one scheduler query per backend for all its open jobs
            poll.refresh(root, backend_for(name, root), open_jobs, report=lambda _: None, **_intervals(name, root))
    width = max(len(r.key) for r in records)
    print(f"{'job':<{width}}  {'state':<9}  {'since':<20}  {'commit':<12}  run")
    for r in records:
        print(f"{r.key:<{width}}  {r.state:<9}  {r.since():<20}  {r.commit[:12]:<12}  {r.run_dir}")
    return 0
