"""The `qizhi` backend against the local stand-in of the platform's OpenAPI: the exact requests, every
documented failure mode, and no credential or token in anything written, printed or raised."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
import traceback
from email.utils import formatdate
from pathlib import Path

import pytest

from validators import job_ledger as ledger
from validators.cluster import config, poll
from validators.cluster.jobs import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING, JobSpec, Status
from validators.cluster.qizhi import QizhiBackend, RejectedError, field_of, to_status
from validators.errors import ClusterError, TransientError

from ..helpers import setenv
from ..helpers.qizhi_server import AUTH, CREATE, DETAIL, STOP, Fault, QizhiServer

USER, PASSWORD = "zhang.wei", "Qz-s3cret-Passw0rd!"
SHARED = "/inspire/hdd/project/vision/zhang/proj"
RUN = "runs/20250301T080000Z-qizhi-base"
CONFIG = f"""\
base_url: https://qz.sii.edu.cn
workspace_id: ws-6e8a1c2d
project_id: project-0b7f
logic_compute_group_id: lcg-h100-a
spec_id: 4dc0e3b4-quota-8gpu
image: docker.sii.shaipower.online/inspire-studio/pytorch:25.06-py3
image_type: SOURCE_OFFICIAL
instance_count: 2
shm_gi: 64
task_priority: 4
shared_dir: {SHARED}
"""
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


class Clock:
    """The time both the backend and the stand-in read: tests move it instead of waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        setenv(monkeypatch, var, None)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def qz(clock: Clock):
    with QizhiServer(USER, PASSWORD, clock=clock) as server:
        yield server


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "proj" / "configs" / "cluster" / "qizhi.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(CONFIG)
    return tmp_path / "proj"


def spec(name: str = "proj-base") -> JobSpec:
    return JobSpec(name, SHARED, RUN, f"{RUN}/job.log", ("trainer=ddp_gpu", "trainer.num_nodes=2", "--epochs", "3"),
                   {"WANDB_MODE": "offline", "HEPHAESTUS_RUN_DIR": RUN})


def backend(qz: QizhiServer, root: Path, clock: Clock, sleeps: list[float] | None = None, env: dict | None = None,
            **cfg: object) -> QizhiBackend:
    env = {"QZ_USERNAME": USER, "QZ_PASSWORD": PASSWORD, "QZ_BASE_URL": qz.url} if env is None else env
    record = sleeps if sleeps is not None else []
    return QizhiBackend({**config.load(root, "qizhi"), **cfg}, root, env=env, sleep=record.append, clock=clock, timeout_s=5)


def poll_until_done(qb: QizhiBackend, job_id: str, limit: int = 10) -> list[Status]:
    seen = [qb.query([job_id])[job_id]]
    while not seen[-1].terminal and len(seen) < limit:
        seen.append(qb.query([job_id])[job_id])
    return seen


COMMAND = (f"set -o pipefail && mkdir -p {SHARED}/{RUN} && {{ cd {SHARED} && source .venv/bin/activate && "
           f"export HEPHAESTUS_RUN_DIR={RUN} && export WANDB_MODE=offline && "
           f"python scripts/train.py trainer=ddp_gpu trainer.num_nodes=2 --epochs 3; }} 2>&1 | tee -a {SHARED}/{RUN}/job.log")


def test_submit_poll_to_completed_sends_the_documented_requests(qz, root, clock):
    qb = backend(qz, root, clock)
    assert qb.workdir == SHARED
    sub = qb.submit(spec())
    assert re.fullmatch(r"job-[0-9a-f-]{36}", sub.job_id)
    assert sub.url == f"{qz.url}/jobs/distributedTrainingDetail/{sub.job_id}"  # QZ_BASE_URL overrides base_url
    auth, create = qz.requests
    assert (auth.path, auth.body) == (AUTH, {"username": USER, "password": PASSWORD})
    assert "Authorization" not in auth.headers
    assert create.path == CREATE
    assert create.headers["Authorization"] == f"Bearer {qz.issued[0]}"
    assert create.headers["Content-Type"] == "application/json"
    assert create.body == {
        "name": "proj-base", "logic_compute_group_id": "lcg-h100-a", "project_id": "project-0b7f",
        "workspace_id": "ws-6e8a1c2d", "framework": "pytorch", "command": COMMAND, "task_priority": 4,
        "framework_config": [{"image": "docker.sii.shaipower.online/inspire-studio/pytorch:25.06-py3",
                              "image_type": "SOURCE_OFFICIAL", "instance_count": 2, "shm_gi": 64,
                              "spec_id": "4dc0e3b4-quota-8gpu"}],
    }
    seen = poll_until_done(qb, sub.job_id)
    assert [(s.state, s.native) for s in seen] == [(PENDING, "job_queued"), (RUNNING, "job_running"),
                                                   (COMPLETED, "job_succeeded")]
    assert re.fullmatch(f"created {ISO}", seen[0].message)
    assert re.fullmatch(f"run {ISO}", seen[1].message)
    assert re.fullmatch(f"finished {ISO}", seen[2].message)
    details = qz.requests[2:]
    assert [(r.path, r.body) for r in details] == [(DETAIL, {"job_id": sub.job_id})] * 3  # one call per job per poll
    assert {r.headers["Authorization"] for r in details} == {f"Bearer {qz.issued[0]}"}  # the token is reused
    assert qz.paths().count(AUTH) == 1


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("code", [0, 3])
def test_the_job_command_logs_everything_and_keeps_the_training_exit_status(tmp_path, root, qz, clock, code):
    """The exact command, run by bash: stdout and stderr reach the log and the platform's console, and the
    pipeline's status is the training's, not tee's."""
    project = tmp_path / "shared" / "proj"
    (project / ".venv" / "bin").mkdir(parents=True)
    (project / ".venv" / "bin" / "activate").write_text(f'export PATH="{Path(sys.executable).parent}:$PATH"\n')
    (project / "scripts").mkdir()
    (project / "scripts" / "train.py").write_text(
        "import os, sys\nprint('training', sys.argv[1:], os.environ['WANDB_MODE'])\n"
        "print('a warning', file=sys.stderr)\nsys.exit(int(sys.argv[-1]))\n")
    job = JobSpec("proj-x", str(project), RUN, f"{RUN}/job.log", ("--exit", str(code)), {"WANDB_MODE": "offline"})
    done = subprocess.run(["bash", "-c", backend(qz, root, clock).command(job)], capture_output=True, text=True)
    assert done.returncode == code
    lines = [f"training ['--exit', '{code}'] offline", "a warning"]
    assert sorted(done.stdout.splitlines()) == sorted(lines)
    assert sorted((project / RUN / "job.log").read_text().splitlines()) == sorted(lines)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_job_command_fails_and_logs_when_the_venv_is_missing(tmp_path, root, qz, clock):
    project = tmp_path / "shared" / "proj"
    job = JobSpec("proj-x", str(project), RUN, f"{RUN}/job.log", (), {})
    done = subprocess.run(["bash", "-c", backend(qz, root, clock).command(job)], capture_output=True, text=True)
    assert done.returncode == 1
    assert ".venv/bin/activate: No such file or directory" in (project / RUN / "job.log").read_text()


@pytest.mark.skipif(shutil.which("dash") is None, reason="needs dash")
def test_a_posix_sh_refuses_the_command_instead_of_hiding_a_failure(tmp_path, root, qz, clock):
    job = JobSpec("proj-x", str(tmp_path / "proj"), RUN, f"{RUN}/job.log", (), {})
    done = subprocess.run(["dash", "-c", backend(qz, root, clock).command(job)], capture_output=True, text=True)
    assert (done.returncode, done.stderr.strip()) == (2, "dash: 1: set: Illegal option -o pipefail")


def test_rate_limit_backs_off_honouring_retry_after_then_succeeds(qz, root, clock):
    sleeps: list[float] = []
    qb = backend(qz, root, clock, sleeps)
    job_id = qb.submit(spec()).job_id
    qz.inject(DETAIL, Fault(http=429, retry_after="7"), Fault(http=429), Fault(http=200, code=429))
    assert qb.query([job_id])[job_id].state == PENDING
    assert sleeps == [7.0, 2.0, 4.0]
    assert qz.paths().count(DETAIL) == 4


def test_retry_after_as_an_http_date_is_honoured(qz, root, clock):
    sleeps: list[float] = []
    qb = backend(qz, root, clock, sleeps)
    job_id = qb.submit(spec()).job_id
    qz.inject(DETAIL, Fault(http=429, retry_after=formatdate(time.time() + 30, usegmt=True)))
    qb.query([job_id])
    assert len(sleeps) == 1 and 25 < sleeps[0] <= 30


def test_rate_limit_exhausted_or_too_long_is_transient(qz, root, clock):
    sleeps: list[float] = []
    qb = backend(qz, root, clock, sleeps)
    job_id = qb.submit(spec()).job_id
    qz.inject(DETAIL, *[Fault(http=429)] * 4)
    with pytest.raises(TransientError, match=r"train_job/detail: rate limited \(429\): Too Many Requests \(tried 4 times\)"):
        qb.query([job_id])
    assert sleeps == [1.0, 2.0, 4.0]
    qz.inject(DETAIL, Fault(http=429, retry_after="600"))  # longer than MAX_WAIT_S: the caller waits, not the backend
    with pytest.raises(TransientError) as err:
        qb.query([job_id])
    assert err.value.retry_after == 600.0
    assert sleeps == [1.0, 2.0, 4.0]


def test_a_server_error_on_create_is_retried_and_creates_one_job(qz, root, clock):
    sleeps: list[float] = []
    qb = backend(qz, root, clock, sleeps)
    qz.inject(CREATE, Fault(http=500), Fault(http=502, body="<html><h1>502 Bad Gateway</h1></html>"))
    sub = qb.submit(spec())
    assert sleeps == [1.0, 2.0]
    assert qz.paths() == [AUTH, CREATE, CREATE, CREATE]
    assert list(qz.jobs) == [sub.job_id]


def test_server_errors_forever_end_in_a_transient_error_after_the_bound(qz, root, clock):
    sleeps: list[float] = []
    qb = backend(qz, root, clock, sleeps)
    job_id = qb.submit(spec()).job_id
    qz.inject(DETAIL, *[Fault(http=500)] * 4)
    with pytest.raises(TransientError, match=r"platform error \(HTTP 500, code 500\): 内部服务错误 \(tried 4 times\)"):
        qb.query([job_id])
    assert sleeps == [1.0, 2.0, 4.0]
    assert qz.paths().count(DETAIL) == 4
    assert qb.query([job_id])[job_id].native == "job_queued"  # the next poll goes on


def test_no_reply_at_all_is_retried_then_transient(root, clock):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps: list[float] = []
    env = {"QZ_USERNAME": USER, "QZ_PASSWORD": PASSWORD, "QZ_BASE_URL": f"http://127.0.0.1:{port}"}
    qb = QizhiBackend(config.load(root, "qizhi"), root, env=env, sleep=sleeps.append, clock=clock)
    refused = rf"http://127.0.0.1:{port}/auth/token: no reply \(.*refused.*\) \(tried 4 times\)"
    with pytest.raises(TransientError, match=refused):
        qb.submit(spec())  # refused: the create was never sent, so even a create may be retried
    assert sleeps == [1.0, 2.0, 4.0]


def test_a_timeout_is_retried_for_detail_but_never_for_create(qz, root, clock):
    sleeps: list[float] = []
    qb = backend(qz, root, clock, sleeps)
    qb.timeout_s = 0.3
    job_id = qb.submit(spec()).job_id
    qz.inject(DETAIL, Fault(delay_s=1.0))
    assert qb.query([job_id])[job_id].native in ("job_queued", "job_running")
    assert sleeps == [1.0]
    qz.inject(CREATE, Fault(delay_s=1.0))  # the platform creates the job, but the reply comes too late
    with pytest.raises(ClusterError, match="the job may or may not have been created") as err:
        qb.submit(spec("proj-second"))
    assert not isinstance(err.value, TransientError)
    assert err.value.hint == "look at the platform's job list before submitting again"
    assert qz.paths().count(CREATE) == 2 and sleeps == [1.0]


@pytest.mark.parametrize(("message", "field", "hint"), [
    ("Key: 'JobOpenapi.FrameworkConfig[0].SpecId' Error:Field validation for 'SpecId' failed on the 'required' tag",
     "spec_id", "check spec_id in configs/cluster/qizhi.yaml"),
    ("json: cannot unmarshal string into Go struct field JobOpenapi.task_priority of type int32",
     "task_priority", "check task_priority in configs/cluster/qizhi.yaml"),
    ("参数校验错误: logic_compute_group_id 不能为空", "logic_compute_group_id",
     "check logic_compute_group_id in configs/cluster/qizhi.yaml"),
    ("invalid parameter: image_type must be one of [SOURCE_PUBLIC SOURCE_PRIVATE SOURCE_OFFICIAL]", "image_type",
     "check image_type in configs/cluster/qizhi.yaml"),
    ("workspaceId is required", "workspace_id", "check workspace_id in configs/cluster/qizhi.yaml"),
    ("name: the length must be no more than 64", "name",
     "name is not a setting of configs/cluster/qizhi.yaml: the backend fills it in"),
])
def test_a_validation_error_names_the_field_and_sends_nothing_more(qz, root, clock, message, field, hint):
    sleeps: list[float] = []
    qb = backend(qz, root, clock, sleeps)
    qz.inject(CREATE, Fault(http=400, code=-100000, message=message))
    with pytest.raises(RejectedError) as err:
        qb.submit(spec())
    assert (err.value.code, err.value.field, err.value.hint) == (-100000, field, hint)
    assert str(err.value).startswith(f"{qz.url}{CREATE}: the platform rejected the field {field}: {message}")
    assert qz.paths() == [AUTH, CREATE] and sleeps == [] and qz.jobs == {}


@pytest.mark.parametrize(("cfg", "field"), [({"image_type": "SOURCE_MIRROR"}, "image_type"),
                                            ({"instance_count": 0}, "instance_count"),
                                            ({"workspace_id": ""}, "workspace_id")])
def test_the_stand_in_validates_a_create_body_in_the_go_validators_words(qz, root, clock, cfg, field):
    with pytest.raises(RejectedError) as err:
        backend(qz, root, clock, **cfg).submit(spec())
    assert err.value.field == field and "Error:Field validation for" in str(err.value)
    assert qz.paths() == [AUTH, CREATE]


def test_an_unnamed_validation_error_says_so(qz, root, clock):
    qz.inject(CREATE, Fault(http=400, code=-100000))
    unnamed = r"rejected the field \(unnamed\): 参数校验错误 \(hint: the platform named no field"
    with pytest.raises(RejectedError, match=unnamed):
        backend(qz, root, clock).submit(spec())


def test_the_token_is_renewed_before_it_expires(qz, root, clock):
    qz.expires_in = "100"  # a string, as the platform sends it
    qb = backend(qz, root, clock)
    job_id = qb.submit(spec()).job_id
    clock.now += 80
    qb.query([job_id])
    assert qz.paths() == [AUTH, CREATE, DETAIL]
    clock.now += 12  # 8 s left: within the 10% margin, so renewed first; no request is refused
    assert qb.query([job_id])[job_id].state == RUNNING
    assert qz.paths() == [AUTH, CREATE, DETAIL, AUTH, DETAIL]
    assert qz.requests[-1].headers["Authorization"] == f"Bearer {qz.issued[1]}"


@pytest.mark.parametrize("as_401", [False, True])
def test_a_token_expiring_mid_poll_is_renewed_once_and_polling_goes_on(qz, root, clock, as_401):
    qz.expired_as_401 = as_401  # code -1 (HTTP 200) or HTTP 401
    qb = backend(qz, root, clock)
    job_id = qb.submit(spec()).job_id
    assert qb.query([job_id])[job_id].native == "job_queued"
    qz.revoke()
    assert qb.query([job_id])[job_id].native == "job_running"
    assert qz.paths() == [AUTH, CREATE, DETAIL, DETAIL, AUTH, DETAIL]
    assert qb.query([job_id])[job_id].state == COMPLETED
    assert qz.paths().count(AUTH) == 2


@pytest.mark.parametrize("fault", [Fault(http=401), Fault(code=-1)])
def test_refused_twice_is_a_credentials_error(qz, root, clock, fault):
    qb = backend(qz, root, clock)
    job_id = qb.submit(spec()).job_id
    qz.inject(DETAIL, fault, fault)
    with pytest.raises(ClusterError, match=r"refused the credentials .*\(hint: check QZ_USERNAME/QZ_PASSWORD\)") as err:
        qb.query([job_id])
    assert not isinstance(err.value, (TransientError, RejectedError))
    assert qz.paths() == [AUTH, CREATE, DETAIL, AUTH, DETAIL]


def test_a_wrong_password_is_a_credentials_error(qz, root, clock):
    env = {"QZ_USERNAME": USER, "QZ_PASSWORD": "wrong-password", "QZ_BASE_URL": qz.url}
    refused = (r"auth/token: the platform refused the credentials \(HTTP 401, code -1\): 用户名或密码错误 "
               r"\(hint: check QZ_USERNAME/QZ_PASSWORD\)")
    with pytest.raises(ClusterError, match=refused):
        backend(qz, root, clock, env=env).submit(spec())
    assert qz.paths() == [AUTH]


def test_a_failed_job_is_failed_with_the_platforms_message(qz, root, clock):
    qz.script = ["job_pending", "job_running", "job_failed"]
    qb = backend(qz, root, clock)
    seen = poll_until_done(qb, qb.submit(spec()).job_id)
    assert [s.state for s in seen] == [RUNNING, FAILED]
    assert seen[-1].native == "job_failed"
    assert re.fullmatch(f"exit code 1: the training process failed; finished {ISO}", seen[-1].message)


def test_stop_cancels_the_job(qz, root, clock):
    qb = backend(qz, root, clock)
    job_id = qb.submit(spec()).job_id
    qz.set_status(job_id, "job_running")
    assert qb.query([job_id])[job_id].state == RUNNING
    qb.cancel(job_id)
    assert (qz.requests[-1].path, qz.requests[-1].body) == (STOP, {"job_id": job_id})
    status = qb.query([job_id])[job_id]
    assert (status.state, status.native) == (CANCELLED, "job_stopped")
    assert re.fullmatch(f"stopped by user; finished {ISO}", status.message)


def test_a_job_the_platform_does_not_know_is_left_out(qz, root, clock):
    qb = backend(qz, root, clock)
    job_id = qb.submit(spec()).job_id
    assert set(qb.query([job_id, "job-gone", job_id])) == {job_id}
    assert qz.paths().count(DETAIL) == 2


@pytest.mark.parametrize(("missing", "named"), [(["QZ_USERNAME"], "QZ_USERNAME"), (["QZ_PASSWORD"], "QZ_PASSWORD"),
                                                (["QZ_USERNAME", "QZ_PASSWORD"], "QZ_USERNAME and QZ_PASSWORD")])
def test_a_missing_credential_is_named_and_nothing_is_sent(qz, root, clock, missing, named):
    env = {"QZ_USERNAME": USER, "QZ_PASSWORD": PASSWORD, "QZ_BASE_URL": qz.url}
    for var in missing:
        env[var] = ""
    with pytest.raises(ClusterError, match=f"the qizhi backend needs {named} in the environment; nothing was sent"):
        backend(qz, root, clock, env=env)
    assert qz.requests == []


@pytest.mark.parametrize(("data", "state", "message"), [
    ({"status": "JOB_SUCCEEDED"}, COMPLETED, ""),
    ({"status": "Running", "sub_msg": "  "}, RUNNING, ""),
    ({"status": "job_queued", "sub_msg": "等待资源", "timeline": {"created": "1732272000000", "run": None}}, PENDING,
     "等待资源; created 2024-11-22T10:40:00Z"),
    ({"status": "job_migrating", "timeline": {"created": 1732272000000, "run": "1732275900000"}}, RUNNING,
     "unknown Qizhi status 'job_migrating', taken as not finished; run 2024-11-22T11:45:00Z"),
    ({"status": "job_preparing", "timeline": "not a mapping"}, PENDING,
     "unknown Qizhi status 'job_preparing', taken as not finished"),
    ({}, PENDING, "unknown Qizhi status '', taken as not finished"),
])
def test_detail_statuses_normalise_and_unknown_ones_are_not_terminal(data, state, message):
    status = to_status(data)
    assert (status.state, status.native, status.message) == (state, str(data.get("status", "")), message)


def test_field_of_ignores_words_that_are_not_fields():
    assert field_of("Key: 'JobOpenapi.Foo' Error:Field validation for 'Foo' failed on the 'required' tag") == ""
    assert field_of("framework_config[0].shm_gi must be >= 0") == "shm_gi"


def test_no_credential_or_token_reaches_any_file_output_or_error(qz, root, clock, capfd):
    """A whole cycle, with the platform echoing the password and the token in its messages: the ledger,
    every file under tmp, the captured output and every error text (with its chain) hold neither."""
    qb = backend(qz, root, clock)
    texts: list[str] = []

    def attempt(call):
        try:
            return call()
        except ClusterError as err:
            texts.append("".join(traceback.format_exception(err)))
            print(f"error: {err}", file=sys.stderr)
            return None

    job = spec()
    sub = qb.submit(job)
    token = qz.issued[0]
    record = ledger.JobRecord("qizhi", sub.job_id, job.name, qb.command(job), "0" * 40, False, "f" * 64, RUN,
                              job.log_path, sub.url, train_args=list(job.train_args))
    echo = f"user {USER} password {PASSWORD} token {token}"
    qz.inject(DETAIL, Fault(http=400, code=-100000, message=f"job_id invalid; {echo}"))
    assert attempt(lambda: qb.query([sub.job_id])) == {}  # rejected: left out
    qz.inject(DETAIL, *[Fault(http=500, message=echo)] * 4)
    attempt(lambda: qb.query([sub.job_id]))
    qz.inject(DETAIL, Fault(code=-1, message=echo), Fault(code=-1, message=echo))
    attempt(lambda: qb.query([sub.job_id]))
    qz.inject(CREATE, Fault(code=12345, message=echo))
    attempt(lambda: qb.submit(spec("proj-second")))
    for status in poll_until_done(qb, sub.job_id):
        record.observe(status)
        ledger.save(root, record)
        print(status)
    qb.cancel(sub.job_id)
    record.observe(qb.query([sub.job_id])[sub.job_id])
    ledger.save(root, record)
    print(ledger.load(ledger.path_of(root, "qizhi", sub.job_id)))
    assert len(texts) == 3 and all("<redacted>" in t for t in texts)
    assert record.state == COMPLETED
    out = capfd.readouterr()
    files = [p.read_bytes().decode(errors="replace") for p in root.parent.rglob("*") if p.is_file()]
    assert any(sub.job_id in f for f in files)  # the ledger was written
    for secret in [PASSWORD, USER, *qz.issued]:
        for text in [out.out, out.err, *texts, *files, repr(qb), repr(vars(record))]:
            assert secret not in text
    assert all(PASSWORD not in str(r.body) for r in qz.requests if r.path != AUTH)
    assert all(token not in str(r.body) for r in qz.requests)


def test_the_wings_polling_loop_drives_a_qizhi_job_to_completed(qz, root, clock):
    """poll.wait with this backend: a rate limit and a run of server errors on the way, which the
    backend's own retries and then poll's bounded retries absorb; the ledger ends COMPLETED."""
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.now += seconds

    qb = QizhiBackend(config.load(root, "qizhi"), root, env={"QZ_USERNAME": USER, "QZ_PASSWORD": PASSWORD,
                                                             "QZ_BASE_URL": qz.url}, sleep=sleep, clock=clock)
    job = spec()
    sub = qb.submit(job)
    rec = ledger.JobRecord("qizhi", sub.job_id, job.name, qb.command(job), "0" * 40, False, "f" * 64, RUN, job.log_path,
                           sub.url)
    qz.inject(DETAIL, Fault(http=429, retry_after="3"), *[Fault(http=500)] * 4)
    lines: list[str] = []
    counter = poll.Counter()
    assert poll.wait(root, qb, [rec], limit_s=3600, initial_s=5, max_s=120, retries=5, clock=clock, sleep=sleep,
                     report=lines.append, counter=counter)
    assert [(h["state"], h["native"]) for h in rec.history] == [(PENDING, "job_queued"), (RUNNING, "job_running"),
                                                                (COMPLETED, "job_succeeded")]
    assert ledger.load(ledger.path_of(root, "qizhi", sub.job_id)).history == rec.history
    # query 1: 429 (Retry-After 3 s), 500 (2 s), 500 (4 s), 500: four tries, the backend gives up; poll waits 5 s;
    # query 2: 500 (1 s), then job_queued; the interval starts over at 5 s after the change
    assert sleeps[:6] == [3.0, 2.0, 4.0, 5.0, 1.0, 5.0]
    assert counter.queries == 4 and counter.failures == 1
    assert qz.paths().count(DETAIL) == 8 and qz.paths().count(AUTH) == 1
    assert lines[0].startswith(f"qizhi: query failed ({qz.url}{DETAIL}: platform error (HTTP 500, code 500)")
    assert lines[1:] == [f"qizhi-{sub.job_id}: {s} [{n}] ({m})" for s, n, m in
                         ((h["state"], h["native"], h["message"]) for h in rec.history)]
