"""The cluster wing's core: typed configs, the ledger, the polling loop, and the local backend's real processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from validators import job_ledger as ledger
from validators.cluster import config, poll
from validators.cluster.jobs import COMPLETED, FAILED, PENDING, RUNNING, JobSpec, Status
from validators.cluster.ledger_gate import rule_jobs
from validators.cluster.local import LocalBackend
from validators.errors import ClusterError, TransientError
from validators.job_ledger import JobRecord

from ..helpers import TEMPLATE

SHIPPED = TEMPLATE / "template/configs/cluster"


def project_with(tmp_path: Path, backend: str, text: str) -> Path:
    (tmp_path / "configs/cluster").mkdir(parents=True, exist_ok=True)
    (tmp_path / f"configs/cluster/{backend}.yaml").write_text(text)
    return tmp_path


@pytest.mark.parametrize("backend", ["local", "slurm", "qizhi"])
def test_the_shipped_configs_are_the_schema_and_every_key_is_commented(backend):
    text = (SHIPPED / f"{backend}.yaml").read_text()
    data = yaml.safe_load(text)
    assert list(data) == list(config.KEYS[backend])
    assert all("#" in line for line in text.splitlines() if line and not line.startswith("#"))
    required = {"workspace_id", "project_id", "logic_compute_group_id", "spec_id", "image", "shared_dir"}  # yours to fill
    assert sorted(e.path for e in config.check(TEMPLATE / "template", backend)) == sorted(required if backend == "qizhi" else [])


def test_every_bad_key_is_reported_at_once_with_file_key_value_and_hint(tmp_path):
    root = project_with(tmp_path, "qizhi", "image: registry.example/train\ninstance_count: 0\nshared_dir: data/proj\n"
                                           "retries: yes\nimage_typ: SOURCE_PUBLIC\n")
    assert [str(e) for e in config.check(root, "qizhi")] == [
        "configs/cluster/qizhi.yaml: image_typ: 'SOURCE_PUBLIC' is invalid: expected one of the keys base_url, workspace_id, "
        "project_id, logic_compute_group_id, spec_id, image, image_type, instance_count, shm_gi, task_priority, framework, "
        "shared_dir, overrides, poll_initial_s, poll_max_s, retries (hint: did you mean image_type?)",
        "configs/cluster/qizhi.yaml: image: 'registry.example/train' is invalid: expected an image with a tag, like "
        "registry/name:tag (hint: an image without a tag is ambiguous: name the exact one the .venv was built in)",
        "configs/cluster/qizhi.yaml: instance_count: 0 is invalid: expected an integer >= 1: nodes (set trainer.num_nodes to match)",
        "configs/cluster/qizhi.yaml: shared_dir: 'data/proj' is invalid: expected an absolute path: the project on the "
        "platform's storage (hint: the job `cd`s there; e.g. /inspire/hdd/project/<you>/<project>)",
        "configs/cluster/qizhi.yaml: retries: True is invalid: expected an integer 0..20: transient errors tolerated in a row",
    ]
    with pytest.raises(config.ClusterConfigError) as err:
        config.load(root, "qizhi")
    assert len(err.value.errors) == 5


def test_an_unknown_backend_names_the_known_ones(tmp_path):
    with pytest.raises(ClusterError, match=r"^--backend: 'k8s' is not a backend \(hint: expected one of local, slurm, qizhi\)$"):
        config.load(tmp_path, "k8s")


def test_load_fills_defaults_and_keeps_values(tmp_path):
    root = project_with(tmp_path, "slurm", "nodes: 2\ntime: '1-00:00:00'\n")
    cfg = config.load(root, "slurm")
    assert (cfg["nodes"], cfg["time"], cfg["ntasks_per_node"], cfg["requeue_signal_s"]) == (2, "1-00:00:00", 1, 90)


def record(job_id: str = "7", backend: str = "fake") -> JobRecord:
    return JobRecord(backend=backend, job_id=job_id, name="p-run", command="python scripts/train.py", commit="abc",
                     dirty=False, config_hash="h", run_dir="runs/r", log_path="runs/r/job.log", submitted_at="2026-01-01T00:00:00Z")


def test_the_ledger_round_trips_and_records_only_changes(tmp_path):
    rec = record()
    assert rec.observe(Status(PENDING, "PENDING", "Priority"), at="t1")
    assert not rec.observe(Status(PENDING, "PENDING", "Priority"), at="t2")
    assert rec.observe(Status(RUNNING, "RUNNING"), at="t3")
    path = ledger.save(tmp_path, rec)
    assert path == tmp_path / "jobs/fake-7.yaml"
    assert not list(path.parent.glob(".*tmp"))
    back = ledger.load(path)
    assert back == rec and back.state == RUNNING and back.since() == "t3"
    assert ledger.find(tmp_path, "7") == rec == ledger.find(tmp_path, "fake-7")
    with pytest.raises(ClusterError, match=r"^no job '8' in jobs/ \(hint: the known jobs: fake-7\)$"):
        ledger.find(tmp_path, "8")


class Scripted:
    """A scheduler whose answers the test lists: one entry per query (a dict of statuses, or an exception)."""

    name = "fake"

    def __init__(self, answers):
        self.answers, self.asked = list(answers), []

    def query(self, job_ids):
        self.asked.append(list(job_ids))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class Clock:
    def __init__(self):
        self.now, self.slept = 0.0, []

    def sleep(self, s):
        self.slept.append(s)
        self.now += s


def test_wait_backs_off_doubling_to_the_ceiling_and_starts_over_after_a_change(tmp_path):
    a, b = record("1"), record("2")
    pend, run, done = Status(PENDING, "PENDING"), Status(RUNNING, "RUNNING"), Status(COMPLETED, "COMPLETED")
    backend = Scripted([{"1": pend, "2": pend}] * 5 + [{"1": run, "2": pend}, {"1": run, "2": run}, {"1": done, "2": run},
                                                       {"1": done, "2": done}])
    clock, lines = Clock(), []
    assert poll.wait(tmp_path, backend, [a, b], limit_s=1000, initial_s=2, max_s=10, clock=lambda: clock.now,
                     sleep=clock.sleep, report=lines.append)
    assert clock.slept == [2, 4, 8, 10, 10, 2, 2, 2]
    assert backend.asked[0] == ["1", "2"] and backend.asked[-1] == ["2"]  # one query for all open jobs; ended ones leave it
    assert len(backend.asked) == 9
    assert lines[:2] == ["fake-1: PENDING [PENDING]", "fake-2: PENDING [PENDING]"]
    assert ledger.load(tmp_path / "jobs/fake-2.yaml").state == COMPLETED


def test_wait_gives_up_at_its_limit_and_leaves_the_job_running(tmp_path):
    rec = record()
    backend = Scripted([{"7": Status(RUNNING, "RUNNING")}] * 10)
    clock = Clock()
    assert not poll.wait(tmp_path, backend, [rec], limit_s=15, initial_s=2, max_s=60, clock=lambda: clock.now,
                         sleep=clock.sleep, report=lambda _: None)
    assert clock.slept == [2, 4, 8, 1] and rec.state == RUNNING


def test_transient_errors_are_retried_with_a_bound_and_retry_after_is_honoured(tmp_path):
    rec = record()
    busy = TransientError("HTTP 429", retry_after=7)
    backend = Scripted([TransientError("squeue timed out"), busy, {"7": Status(FAILED, "FAILED", "exit 1")}])
    clock, lines = Clock(), []
    poll.refresh(tmp_path, backend, [rec], retries=2, initial_s=2, max_s=60, sleep=clock.sleep, report=lines.append)
    assert clock.slept == [2, 7] and rec.state == FAILED
    assert lines[0] == "fake: query failed (squeue timed out); retry 1/2 in 2 s"
    backend = Scripted([TransientError("down")] * 3)
    with pytest.raises(TransientError, match=r"^fake: 3 queries in a row failed; the last: down \(hint: the jobs were not touched"):
        poll.refresh(tmp_path, backend, [record("8")], retries=2, sleep=clock.sleep, report=lambda _: None)


def local_job(tmp_path: Path, body: str) -> tuple[LocalBackend, JobSpec]:
    """A project folder whose scripts/train.py is `body` and whose .venv activates nothing (the real .venv is D2's)."""
    (tmp_path / ".venv/bin").mkdir(parents=True)
    (tmp_path / ".venv/bin/activate").write_text("")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts/train.py").write_text(body)
    spec = JobSpec("p-run", str(tmp_path), "runs/r", "runs/r/job.log", ("a=1",), {"WANDB_MODE": "offline"})
    return LocalBackend({}, tmp_path), spec


def submitted(backend: LocalBackend, spec: JobSpec) -> JobRecord:
    job = backend.submit(spec)
    rec = JobRecord("local", job.job_id, spec.name, spec.command(), "c", False, "h", spec.run_dir, spec.log_path)
    ledger.save(Path(spec.workdir), rec)
    return rec


def until(backend: LocalBackend, rec: JobRecord, limit: float = 30) -> str:
    root = Path(backend.workdir)
    assert poll.wait(root, backend, [rec], limit_s=limit, initial_s=0.1, max_s=0.5, report=lambda _: None)
    return rec.state


def test_a_local_job_runs_detached_and_its_exit_status_decides(tmp_path):
    backend, spec = local_job(tmp_path, "import os, sys\nprint('args', sys.argv[1:], os.environ['WANDB_MODE'])\n")
    rec = submitted(backend, spec)
    assert until(backend, rec) == COMPLETED
    assert rec.history[-1]["message"] == "exit 0"
    assert (tmp_path / "runs/r/job.log").read_text() == "args ['a=1'] offline\n"
    backend, spec = local_job(tmp_path / "f", "raise SystemExit('boom')\n")
    rec = submitted(backend, spec)
    assert until(backend, rec) == FAILED and rec.history[-1]["message"] == "exit 1"


def test_a_local_job_killed_with_sigkill_is_failed_and_a_cancelled_one_cancelled(tmp_path):
    backend, spec = local_job(tmp_path, "import os, time\nopen('pid', 'w').write(str(os.getpid()))\ntime.sleep(60)\n")
    rec = submitted(backend, spec)
    deadline = time.monotonic() + 20
    while not (tmp_path / "pid").is_file() or not (tmp_path / "pid").read_text():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(int((tmp_path / "pid").read_text()), signal.SIGKILL)
    assert until(backend, rec) == FAILED
    assert rec.history[-1]["message"] == "killed by SIGKILL (exit 137)"
    backend, spec = local_job(tmp_path / "c", "import time\ntime.sleep(60)\n")
    rec = submitted(backend, spec)
    start = time.monotonic()
    backend.cancel(rec.job_id)
    assert until(backend, rec) == "CANCELLED" and time.monotonic() - start < 10


def test_a_local_job_whose_wrapper_vanished_is_failed(tmp_path):
    backend, spec = local_job(tmp_path, "import time\ntime.sleep(60)\n")
    rec = submitted(backend, spec)
    import json

    pid = json.loads((tmp_path / "runs/r/job.pid").read_text())["pid"]
    os.killpg(pid, signal.SIGKILL)
    assert until(backend, rec) == FAILED
    assert rec.history[-1]["message"].startswith(f"pid {pid} ended without an exit status")
    assert shutil.which("bash")


def test_gate_d4_reads_every_ledger_and_checks_the_settings_of_the_backends_used(tmp_path):
    from validators.project import Project

    for backend in ("local", "slurm", "qizhi"):
        project_with(tmp_path, backend, (SHIPPED / f"{backend}.yaml").read_text())
    assert list(rule_jobs(Project(tmp_path))) == []  # qizhi.yaml's empty ids are fine while no job used it
    rec = record("9", backend="qizhi")
    rec.history.append({"at": "t", "state": "DONE", "native": "x", "message": ""})
    ledger.save(tmp_path, rec)
    (tmp_path / "jobs/local-1.yaml").write_text("not: a ledger\n")
    errors = [str(e) for e in rule_jobs(Project(tmp_path))]
    assert errors[:2] == [
        "jobs/local-1.yaml: <root>: missing: expected a job ledger written by `python -m validators submit` "
        f"(hint: {tmp_path}/jobs/local-1.yaml: not a job ledger (no backend and job_id) (hint: restore it from git))",
        "jobs/qizhi-9.yaml: history[0].state: 'DONE' is invalid: expected one of PENDING, RUNNING, COMPLETED, FAILED, "
        "CANCELLED, TIMEOUT (hint: restore the file from git)"]
    assert sorted(e.split(": ")[1] for e in errors[2:]) == ["image", "logic_compute_group_id", "project_id", "shared_dir",
                                                           "spec_id", "workspace_id"]


def test_the_review_names_a_missing_git_repository_and_a_dirty_tree(tmp_path):
    from validators.cluster.submit import git_state

    commit, changed = git_state(tmp_path)
    assert commit == "" and changed[0].startswith("not a git repository with a commit")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs/local-1.yaml").write_text("backend: local\n")  # the ledger never makes the tree dirty
    subprocess.run([*git, "add", "a.txt"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "a"], cwd=tmp_path, check=True)
    commit, changed = git_state(tmp_path)
    assert len(commit) == 40 and changed == []
    (tmp_path / "a.txt").write_text("b")
    assert git_state(tmp_path) == (commit, ["a.txt"])


def test_the_review_runs_the_gates_of_stages_a_d1_and_d2_from_the_table_it_is_given(tmp_path, monkeypatch):
    from validators.cluster.submit import REVIEW_GATES, review
    from validators.errors import GateError
    from validators.project import Project

    def rule(stage):
        return lambda project: iter([GateError(stage, "", "x", f"gate {stage}")])

    table = {stage: [rule(stage)] for stage in ("A1", "A5", "B1", "C4", "D1", "D2", "D4")}
    monkeypatch.delenv("WANDB_MODE", raising=False)
    _, problems = review(Project(tmp_path), [], allow_dirty=True, gate_table=lambda: table, config_errors=[])
    assert REVIEW_GATES == ("A", "D1", "D2")
    assert [p.file for p in problems if isinstance(p, GateError)] == ["A1", "A5", "D1", "D2"]
    monkeypatch.setenv("WANDB_MODE", "online")  # the shell's W&B mode: the review's own check, not a file gate D1 reads
    _, problems = review(Project(tmp_path), [], allow_dirty=True, gate_table=None, config_errors=[])
    assert ("WANDB_MODE=online in this shell: expected offline (the job runs offline; unset it so the review matches "
            "the job)") in problems
