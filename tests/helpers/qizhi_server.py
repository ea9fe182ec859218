"""A local stand-in for the Qizhi platform's OpenAPI (Alpha), for driving the real `qizhi` backend in tests.

    with QizhiServer(username="alice", password="pw") as qz:
        qz.url                                   # http://127.0.0.1:<port>: the backend's base_url
        qz.inject(DETAIL, Fault(http=429, retry_after="2"), Fault(http=500))  # the next two detail calls fail
        qz.script = ["job_pending", "job_running", "job_failed"]  # the statuses of jobs created from now on
        qz.requests                              # every request: Request(path, headers, body)
        qz.revoke()                              # every token issued so far is refused (expired mid-poll)

It follows the documented API: POST /auth/token {username, password} -> data {access_token,
expires_in (a string, as the platform sends it), token_type: "Bearer"}; POST /openapi/v1/train_job/create,
/detail and /stop with `Authorization: Bearer <token>`; every reply `{code, message, data}` with code 0
on success. A token past its expires_in (by `clock`), revoked or unknown is refused with code -1 (HTTP
200, as qzcli observed) or, with `expired_as_401`, HTTP 401. A create body missing a field is refused
with HTTP 400 and code -100000, its message in the Go validator's words, as the platform's Go backend
would. Each detail call of a job moves it one step along its script (the last step stays); the test
may also set a job's status itself (`jobs[id].status`). Stop makes a job job_stopped. Where the API is
silent, the stand-in chooses and says so: an unknown job_id is HTTP 404 with code 404.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from .standin import StandIn, send

AUTH = "/auth/token"
CREATE, DETAIL, STOP = "/openapi/v1/train_job/create", "/openapi/v1/train_job/detail", "/openapi/v1/train_job/stop"
SUCCEEDS = ["job_pending", "job_queued", "job_running", "job_succeeded"]
TERMINAL = {"job_succeeded", "job_failed", "job_stopped"}
REQUIRED = {"name": "Name", "logic_compute_group_id": "LogicComputeGroupId", "project_id": "ProjectId",
            "framework": "Framework", "command": "Command", "task_priority": "TaskPriority",
            "workspace_id": "WorkspaceId", "framework_config": "FrameworkConfig"}
CONFIG = {"image": "Image", "image_type": "ImageType", "instance_count": "InstanceCount", "shm_gi": "ShmGi",
          "spec_id": "SpecId"}
IMAGE_TYPES = ("SOURCE_PUBLIC", "SOURCE_PRIVATE", "SOURCE_OFFICIAL")
STAGES = ("created", "resource_prepared", "run", "finished")  # data.timeline: epoch ms as strings, null until reached
SUB_MSG = {"job_failed": "exit code 1: the training process failed", "job_stopped": "stopped by user"}
# A project's configs/cluster/qizhi.yaml for the tests that submit to the stand-in: its ids filled in, fast polls.
PROJECT_CONFIG = """base_url: https://qz.invalid          # QZ_BASE_URL points the job at the stand-in
workspace_id: ws-1                       # ids as the platform's pages show them
project_id: pr-1                         # the billed project
logic_compute_group_id: lcg-1            # the compute group
spec_id: sp-1                            # one instance's resources
image: registry.local/train:1.0          # the image the .venv was built in
shared_dir: /inspire/hdd/demo_project    # the project on the platform's storage
poll_initial_s: 0.2                      # fast polls against the stand-in
"""


@dataclass
class Fault:
    """The reply to one request instead of the real one. `code` None: the documented code for `http`
    (429 -> 429, 500 -> 500, 401 -> 401); with http 200 and no code, only the delay, then the real reply.
    `body` replaces the JSON reply with raw text (a proxy's HTML page, say)."""

    http: int = 200
    code: int | None = None
    message: str = ""
    retry_after: str | None = None
    delay_s: float = 0.0
    body: str | None = None


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Job:
    job_id: str
    body: dict[str, Any]
    script: list[str]
    status: str = ""
    sub_msg: str = ""
    details: int = 0
    timeline: dict[str, str | None] = field(default_factory=lambda: dict.fromkeys(STAGES))


def _ms() -> str:
    return str(int(time.time() * 1000))


class QizhiServer(StandIn):
    def __init__(self, username: str = "researcher", password: str = "pw", expires_in: str = "604800",
                 clock: Callable[[], float] = time.monotonic, expired_as_401: bool = False):
        self.username, self.password, self.expires_in = username, password, expires_in
        self.clock, self.expired_as_401 = clock, expired_as_401
        self.script = list(SUCCEEDS)
        self.requests: list[Request] = []
        self.faults: dict[str, list[Fault]] = {}
        self.tokens: dict[str, float] = {}   # token -> expiry on `clock`
        self.issued: list[str] = []          # every token handed out, oldest first
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        super().__init__()

    def on_post(self, request: BaseHTTPRequestHandler) -> None:
        raw = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        with self.lock:
            self.requests.append(Request(request.path, dict(request.headers.items()), body))
            queue = self.faults.get(request.path) or []
            fault = queue.pop(0) if queue else None
        if fault is not None and fault.delay_s:
            time.sleep(fault.delay_s)
        if fault is not None and (fault.http != 200 or fault.code is not None or fault.body is not None):
            status, payload, headers = self.faulty(fault)
        else:
            with self.lock:
                status, payload = self.handle(request.path, request.headers.get("Authorization", ""), body)
            headers = {}
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False).encode()
        send(request, status, data, "application/json" if not isinstance(payload, str) else "text/html", headers)

    def inject(self, path: str, *faults: Fault) -> None:
        """The next len(faults) requests to `path` get these replies, in order."""
        with self.lock:
            self.faults.setdefault(path, []).extend(faults)

    def revoke(self) -> None:
        """Refuse every token issued so far, as the platform does with an expired one."""
        with self.lock:
            self.tokens.clear()

    def set_status(self, job_id: str, status: str) -> None:
        """Pin a job's status: every later detail call returns it."""
        with self.lock:
            job = self.jobs[job_id]
            job.script = [status]
            self.advance(job, status)

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    @staticmethod
    def reply(code: int, message: str = "", data: Any = None) -> dict[str, Any]:
        return {"code": code, "message": message or ("success" if code == 0 else "error"), "data": data}

    def faulty(self, fault: Fault) -> tuple[int, Any, dict[str, str]]:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if fault.body is not None:
            return fault.http, fault.body, headers
        words = {429: "Too Many Requests", 500: "内部服务错误", 401: "Unauthorized", -1: "token is expired",
                 -100000: "参数校验错误"}
        code = fault.code if fault.code is not None else fault.http
        return fault.http, self.reply(code, fault.message or words.get(code, "error")), headers

    def handle(self, path: str, authorization: str, body: Any) -> tuple[int, dict[str, Any]]:
        """The platform's real reply to one request (called under the lock)."""
        if not isinstance(body, dict):
            return 400, self.reply(-100000, "参数校验错误: the body is not a JSON object")
        if path == AUTH:
            if body.get("username") != self.username or body.get("password") != self.password:
                return 401, self.reply(-1, "用户名或密码错误")
            token = f"eyJ{uuid.uuid4().hex}{uuid.uuid4().hex}"
            self.tokens[token] = self.clock() + float(self.expires_in)
            self.issued.append(token)
            return 200, self.reply(0, data={"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"})
        if path not in (CREATE, DETAIL, STOP):
            return 404, self.reply(404, f"no route {path}")
        scheme, _, token = authorization.partition(" ")
        if scheme != "Bearer" or self.tokens.get(token, float("-inf")) <= self.clock():
            return (401, self.reply(401, "Unauthorized")) if self.expired_as_401 else (200, self.reply(-1, "token is expired"))
        if path == CREATE:
            return self.create(body)
        if not body.get("job_id"):
            return 400, self.reply(-100000, self.invalid("JobIdReq.JobId", "required"))
        job = self.jobs.get(str(body["job_id"]))
        if job is None:
            return 404, self.reply(404, f"job {body['job_id']} not found")
        if path == STOP:
            if job.status not in TERMINAL:
                self.advance(job, "job_stopped")
            return 200, self.reply(0, data={})
        job.details += 1
        if job.status not in TERMINAL:
            self.advance(job, job.script[min(job.details, len(job.script) - 1)])
        data = {"job_id": job.job_id, "name": job.body["name"], "status": job.status, "sub_status": 0,
                "sub_msg": job.sub_msg, "timeline": dict(job.timeline), "priority": job.body["task_priority"],
                "node_count": job.body["framework_config"][0]["instance_count"], "running_time_ms": "0"}
        return 200, self.reply(0, data=data)

    def create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        for key, go in REQUIRED.items():
            if body.get(key) in (None, "", []):
                return 400, self.reply(-100000, self.invalid(f"JobOpenapi.{go}", "required"))
        for i, config in enumerate(body["framework_config"]):
            for key, go in CONFIG.items():
                bad = config.get(key) in (None, "") or key == "instance_count" and config[key] < 1 or (
                    key == "image_type" and config[key] not in IMAGE_TYPES)
                if bad:
                    tag = "required" if config.get(key) in (None, "") else "oneof" if key == "image_type" else "min"
                    return 400, self.reply(-100000, self.invalid(f"JobOpenapi.FrameworkConfig[{i}].{go}", tag))
        job = Job(f"job-{uuid.uuid4()}", body, list(self.script))
        self.advance(job, job.script[0])
        self.jobs[job.job_id] = job
        return 200, self.reply(0, data={"job_id": job.job_id})

    @staticmethod
    def invalid(key: str, tag: str) -> str:
        """A validation message as Go's validator words it."""
        return f"Key: '{key}' Error:Field validation for '{key.rsplit('.', 1)[-1]}' failed on the '{tag}' tag"

    @staticmethod
    def advance(job: Job, status: str) -> None:
        """Set the job's status and the timeline stages it has reached."""
        job.status, job.sub_msg = status, SUB_MSG.get(status, "")
        ran = status in ("job_running", "job_succeeded", "job_failed")
        reached = ["created"] + (["resource_prepared", "run"] if ran else [])
        for stage in reached + (["finished"] if status in TERMINAL else []):
            job.timeline[stage] = job.timeline[stage] or _ms()
