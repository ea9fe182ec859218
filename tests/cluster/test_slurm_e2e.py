"""The slurm backend on a real single-node SLURM cluster (.ci/slurm-up): jobs of a generated project that
train with Lightning through `srun`, fail, are cancelled, time out, and are requeued and resume.

Each job trains the tabular project on its mini data for a few seconds. The project's `.venv` is a link to a
venv with the test venv's packages (tests/helpers/slurm.py); the relocatable `.venv` is tested by D2's tests.
"""

from __future__ import annotations

import calendar
import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from validators.cluster import config
from validators.cluster.jobs import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING, TIMEOUT, JobSpec, Status
from validators.cluster.slurm import SlurmBackend

from ..helpers import render
from ..helpers.slurm import link_job_venv, slurm  # noqa: F401  (a fixture)

pytestmark = pytest.mark.e2e
LONG = ("logger=csv", "--epochs", "1000", "data.batch_size=8")  # minutes of training: ended by the scheduler


@pytest.fixture(scope="module")
def project(slurm, tmp_path_factory) -> Path:  # noqa: F811  (the fixture)
    root = render(tmp_path_factory.mktemp("slurm") / "demo_project", setup=False, task_family="tabular_classification")
    link_job_venv(root, tmp_path_factory)
    return root


def backend(root: Path, **settings) -> SlurmBackend:
    """Write configs/cluster/slurm.yaml with the defaults and `settings`; the backend that reads it."""
    values = {key: spec.default for key, spec in config.KEYS["slurm"].items()} | settings
    config.config_path(root, "slurm").write_text(yaml.safe_dump(values, sort_keys=False), encoding="utf-8")
    return SlurmBackend(config.load(root, "slurm"), root)


def submit(slurm_backend: SlurmBackend, name: str, *train_args: str) -> tuple[str, JobSpec]:
    run_dir = f"runs/{name}"
    spec = JobSpec(name=f"demo_project-{name}", workdir=slurm_backend.workdir, run_dir=run_dir, log_path=f"{run_dir}/job.log",
                   train_args=train_args, env={"HEPHAESTUS_RUN_DIR": run_dir, "WANDB_MODE": "offline"})
    return slurm_backend.submit(spec).job_id, spec


def follow(slurm_backend: SlurmBackend, job_id: str, until=lambda s: s.terminal, timeout: float = 240) -> list[Status]:
    """Poll every 0.5 s until `until(status)`; the distinct statuses seen, in order."""
    seen: list[Status] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = slurm_backend.query([job_id]).get(job_id)
        if status is not None and (not seen or seen[-1] != status):
            seen.append(status)
        if status is not None and until(status):
            return seen
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not get there in {timeout:.0f} s; seen: {seen}")


def log_of(root: Path, spec: JobSpec) -> str:
    return (root / spec.log_path).read_text(encoding="utf-8", errors="replace")


def test_a_two_task_job_trains_with_lightning_ddp_through_srun(project):
    slurm_backend = backend(project, ntasks_per_node=2)
    job_id, spec = submit(slurm_backend, "ddp", "trainer=ddp_cpu", "logger=wandb", "--epochs", "2", "data.batch_size=64")
    seen = follow(slurm_backend, job_id)
    assert seen[-1] == Status(COMPLETED, "COMPLETED"), seen
    run, log = project / spec.run_dir, log_of(project, spec)
    assert "#SBATCH --ntasks-per-node=2\n" in (run / "job.sbatch").read_text()
    for line in ("Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2", "distributed_backend=gloo",
                 "All distributed processes registered. Starting with 2 processes", "SLURM auto-requeueing enabled."):
        assert line in log, line
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["world_size"], summary["epochs"], summary["run_dir"], summary["resumed_from"]) == (2, 2, spec.run_dir, None)
    assert summary["global_step"] > 0 and (project / summary["best_checkpoint"]).is_file()
    assert (run / "checkpoints/last.ckpt").is_file()
    assert len(list((run / "wandb").glob("offline-run-*/run-*.wandb"))) == 1  # W&B offline data, in the run folder
    assert sorted(p.name for p in (project / "runs").iterdir()) == ["ddp", "latest"]  # both ranks wrote one folder


def test_a_job_whose_training_raises_ends_failed_with_the_error_last_in_its_log(project):
    slurm_backend = backend(project)
    job_id, spec = submit(slurm_backend, "raises", "logger=csv", "--epochs", "1", "optim.lr=-1")  # AdamW refuses it in fit()
    seen = follow(slurm_backend, job_id)
    assert seen[-1] == Status(FAILED, "FAILED", "exit code 1; NonZeroExitCode"), seen
    tail = log_of(project, spec).splitlines()[-6:]
    assert "ValueError: Invalid learning rate: -1.0" in tail, tail
    assert not (project / spec.run_dir / "summary.json").exists()


def test_scancel_ends_cancelled(project):
    slurm_backend = backend(project)
    job_id, spec = submit(slurm_backend, "cancelled", *LONG)
    follow(slurm_backend, job_id, until=lambda s: s.state == RUNNING, timeout=120)
    slurm_backend.cancel(job_id)
    seen = follow(slurm_backend, job_id, timeout=60)
    assert (seen[-1].state, seen[-1].native) == (CANCELLED, "CANCELLED"), seen
    assert f"*** JOB {job_id} ON" in log_of(project, spec) and " CANCELLED AT " in log_of(project, spec)


def test_a_one_minute_time_limit_ends_timeout(project):
    slurm_backend = backend(project, time="1", requeue_signal_s=0)  # no SIGUSR1: Lightning would requeue instead
    job_id, spec = submit(slurm_backend, "timeout", *LONG)
    assert "#SBATCH --time=1\n" in (project / spec.run_dir / "job.sbatch").read_text()
    seen = follow(slurm_backend, job_id, timeout=240)
    assert (seen[-1].state, seen[-1].native) == (TIMEOUT, "TIMEOUT") and "TimeLimit" in seen[-1].message, seen
    assert re.search(rf"\*\*\* JOB {job_id} ON \S+ CANCELLED AT \S+ DUE TO TIME LIMIT \*\*\*", log_of(project, spec))


def test_the_requeue_signal_checkpoints_requeues_and_the_job_resumes(project):
    """SIGUSR1 to the job's tasks (what `#SBATCH --signal=SIGUSR1@N` sends before the time limit, and what a
    preemption sends): Lightning saves <run>/hpc_ckpt_1.ckpt, runs `scontrol requeue`; the same job starts
    again (SLURM_RESTART_COUNT=1), and fit() resumes from that checkpoint up to the same total of steps.

    One task: with two DDP ranks, Lightning 2.6's handler (a barrier inside the signal handler) can deadlock
    against the per-step broadcast of the other rank (Lightning-AI/pytorch-lightning#21406).
    """
    slurm_backend = backend(project)
    job_id, spec = submit(slurm_backend, "requeued", "logger=wandb", "--epochs", "100", "trainer.limit_train_batches=10",
                          "data.batch_size=8")
    run = project / spec.run_dir
    deadline = time.monotonic() + 180
    while not (run / "checkpoints/last.ckpt").exists():  # an epoch is done: fit() runs, Lightning's handlers are set
        assert time.monotonic() < deadline, f"no epoch finished in 180 s:\n{log_of(project, spec)[-3000:]}"
        time.sleep(0.2)
    subprocess.run(["scancel", "--signal=USR1", job_id], check=True)  # to the tasks (--batch would kill the batch shell)
    signalled = time.time()
    seen = follow(slurm_backend, job_id, timeout=300)
    assert seen[-1] == Status(COMPLETED, "COMPLETED", "requeued 1x"), seen
    states = [s.state for s in seen]
    assert PENDING in states[states.index(RUNNING):], seen  # RUNNING, then PENDING (requeued), then RUNNING again
    log = log_of(project, spec)
    assert "Handling auto-requeue signal: 10" in log and f"Requeued SLURM job: {job_id}" in log
    restart = log.index(f"hephaestus: job {job_id} started ")
    second = re.search(rf"hephaestus: job {job_id} started (\S+) on \S+ \(restart 1\)", log)
    assert second and restart < second.start(), log[-3000:]
    checkpoint = run / "hpc_ckpt_1.ckpt"
    assert f"Restored all states from the checkpoint at {checkpoint}" in log[second.end():]
    summary = json.loads((run / "summary.json").read_text())
    saved_step = torch.load(checkpoint, map_location="cpu", weights_only=False)["global_step"]
    assert summary["resumed_from"] == f"{spec.run_dir}/hpc_ckpt_1.ckpt"
    assert 0 < saved_step < summary["global_step"] == 100 * 10 and summary["epochs"] == 100  # continued, not restarted
    assert len(list((run / "wandb").glob("offline-run-*/run-*.wandb"))) == 2  # one offline W&B run per start
    started = calendar.timegm(time.strptime(second.group(1), "%Y-%m-%dT%H:%M:%SZ"))
    print(f"requeue: the job started again {started - signalled:.0f} s after SIGUSR1")
