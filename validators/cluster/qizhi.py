"""The `qizhi` job backend: training jobs on the Qizhi (启智) platform through its public OpenAPI (Alpha).

    backend = QizhiBackend(config.load(root, "qizhi"), root)  # QZ_USERNAME, QZ_PASSWORD from the environment
    sub = backend.submit(spec)          # POST /openapi/v1/train_job/create  -> Submitted(job_id, url)
    backend.query([sub.job_id])         # POST /openapi/v1/train_job/detail, once per job
    backend.cancel(sub.job_id)          # POST /openapi/v1/train_job/stop

The protocol: `POST /auth/token {username, password}` gives `data.access_token` and `data.expires_in`
(seconds, often a string); every other call sends `Authorization: Bearer <token>`. Every reply is
`{"code": 0 on success, "message", "data"}`. How each failure is handled, and why:

- HTTP 429 or code 429 (rate limited): wait (Retry-After when the platform gives it), retry; after
  ATTEMPTS tries, or when it asks for more than MAX_WAIT_S, TransientError with its retry_after.
- HTTP 5xx or code 500, no reply, a timeout: back off 1, 2, 4 s and retry; then TransientError. Except a
  `create` whose request may have arrived (a timeout, a reset): retrying could start the job twice, so
  that is a ClusterError telling the user to look at the platform's job list first.
- code -100000 (parameter validation): ClusterError naming the field, parsed from the message; no retry.
- HTTP 401 or code -1 (token expired or refused): authenticate once more and retry once; a second
  refusal is a ClusterError pointing at the credentials. The token is also renewed before `expires_in`.
- any other non-zero code: ClusterError with the platform's message (RejectedError, which `query` treats
  as "the platform no longer knows this job" and leaves the job out).

The credentials come from QZ_USERNAME and QZ_PASSWORD only; they and the token live in this object's
memory and are scrubbed from every message it raises (the platform may echo them back).
"""

from __future__ import annotations

import http.client
import json
import os
import posixpath
import re
import shlex
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from ..errors import ClusterError, TransientError
from .jobs import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING, JobSpec, Status, Submitted

AUTH = "/auth/token"
CREATE, DETAIL, STOP = "/openapi/v1/train_job/create", "/openapi/v1/train_job/detail", "/openapi/v1/train_job/stop"
STATES = {"pending": PENDING, "queued": PENDING, "running": RUNNING,  # data.status without its job_ prefix
          "succeeded": COMPLETED, "failed": FAILED, "stopped": CANCELLED}
VALIDATION, EXPIRED = -100000, -1   # the platform's codes: a parameter failed validation; the token is not valid
ATTEMPTS = 4                        # tries of one call before a TransientError (poll.py bounds the retries above it)
BACKOFF_S = 1.0                     # the first wait between tries; it doubles: 1, 2, 4 s
MAX_WAIT_S = 60.0                   # a longer Retry-After is handed to the caller (TransientError.retry_after)
CREDENTIALS = "check QZ_USERNAME/QZ_PASSWORD"
TIMELINE = ("created", "resource_prepared", "run", "finished")  # data.timeline's stages, in order
# The fields a create or detail body carries, with the configs/cluster/qizhi.yaml key that sets each.
FIELDS = {"name": "", "command": "", "job_id": "", "logic_compute_group_id": "logic_compute_group_id",
          "project_id": "project_id", "workspace_id": "workspace_id", "framework": "framework",
          "task_priority": "task_priority", "framework_config": "", "image": "image", "image_type": "image_type",
          "instance_count": "instance_count", "shm_gi": "shm_gi", "spec_id": "spec_id"}


class RejectedError(ClusterError):
    """The platform answered the call with a non-zero code that no retry will change."""

    def __init__(self, problem: str, hint: str = "", code: int | None = None, field: str = ""):
        super().__init__(problem, hint)
        self.code, self.field = code, field


def snake(name: str) -> str:
    """`SpecId`, `specId` -> `spec_id` (Go and JavaScript spell the body's fields so in their messages)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def field_of(message: str) -> str:
    """The request field a validation message names (the first of FIELDS it mentions), or ''.

    A dotted path counts by its last part, in any spelling: Go's validator (`Key: 'JobOpenapi.FrameworkConfig[0].SpecId'
    Error:Field validation for 'SpecId' failed on the 'required' tag`), encoding/json (`cannot unmarshal
    string into Go struct field JobOpenapi.task_priority of type int32`), plain words (`参数校验错误:
    workspace_id 不能为空`, `workspaceId is required`, `framework_config[0].shm_gi must be >= 0`)."""
    paths = re.findall(r"[A-Za-z_]\w*(?:(?:\[\d+\])*\.[A-Za-z_]\w*)*", message, re.ASCII)
    return next((name for name in (snake(p.rsplit(".", 1)[-1]) for p in paths) if name in FIELDS), "")


def _stamp(value: Any) -> str:
    """A timeline value (epoch milliseconds, as a number or a string) as UTC ISO 8601; other text as it is."""
    text = str(value).strip()
    if not re.fullmatch(r"\d+(\.\d+)?", text):
        return text
    seconds = float(text) / (1000 if float(text) > 1e11 else 1)
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_status(data: Mapping[str, Any]) -> Status:
    """The normalised Status of a `train_job/detail` reply's data.

    `status` is compared case-insensitively, with or without its `job_` prefix. A status this module
    does not know is not terminal: RUNNING once the timeline shows the job ran, else PENDING, with the
    platform's word kept and the message saying it is unknown. The message is `sub_msg` and the latest
    timeline stage (`run 2024-11-22T11:05:00Z`); the running time is left out, so that the message, and
    the ledger's history, change only when the job does."""
    native = str(data.get("status") or "")
    timeline = data.get("timeline") if isinstance(data.get("timeline"), Mapping) else {}
    stages = [(stage, timeline[stage]) for stage in TIMELINE if timeline.get(stage) not in (None, "", 0, "0")]
    parts = [str(data.get("sub_msg") or "").strip()]
    if stages:
        parts.append(f"{stages[-1][0]} {_stamp(stages[-1][1])}")
    state = STATES.get(native.lower().removeprefix("job_"))
    if state is None:
        state = RUNNING if any(stage in ("run", "finished") for stage, _ in stages) else PENDING
        parts.insert(0, f"unknown Qizhi status {native!r}, taken as not finished")
    return Status(state, native, "; ".join(p for p in parts if p))


def _retry_after(headers: Message | None) -> float | None:
    """Retry-After in seconds: a number, or an HTTP date."""
    value = (headers.get("Retry-After") if headers is not None else None) or ""
    if re.fullmatch(r"\s*\d+(\.\d+)?\s*", value):
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


def _unsent(err: BaseException) -> bool:
    """True when the request cannot have reached the platform (refused, or the name did not resolve)."""
    reason = err.reason if isinstance(err, urllib.error.URLError) else err
    return isinstance(reason, (ConnectionRefusedError, socket.gaierror))


class QizhiBackend:
    """Jobs on the Qizhi platform. `cfg` is `config.load(root, "qizhi")`; `env` gives the credentials
    and may override base_url (QZ_BASE_URL); `sleep` and `clock` are injectable for tests."""

    name = "qizhi"

    def __init__(self, cfg: dict[str, Any], root: Path, env: Mapping[str, str] = os.environ,
                 sleep: Callable[[float], None] = time.sleep, timeout_s: float = 30,
                 clock: Callable[[], float] = time.monotonic):
        missing = [var for var in ("QZ_USERNAME", "QZ_PASSWORD") if not env.get(var)]
        if missing:
            raise ClusterError(f"the qizhi backend needs {' and '.join(missing)} in the environment; nothing was sent",
                               "export QZ_USERNAME and QZ_PASSWORD (never write them into a file of the project)")
        self.cfg, self.root = cfg, root
        self.base_url = (env.get("QZ_BASE_URL") or cfg["base_url"]).rstrip("/")
        if not re.match(r"^https?://[^\s/]+", self.base_url):
            raise ClusterError(f"QZ_BASE_URL {self.base_url!r} is not an http(s) URL", "e.g. https://qz.sii.edu.cn")
        self._username, self._password = env["QZ_USERNAME"], env["QZ_PASSWORD"]
        self._sleep, self._clock, self.timeout_s = sleep, clock, timeout_s
        self._token, self._renew_at = "", 0.0
        self._secrets = {self._username, self._password}  # and every token received: scrubbed from messages

    @property
    def workdir(self) -> str:
        """The project folder as the platform's nodes see it (shared_dir)."""
        return str(self.cfg["shared_dir"])

    def command(self, spec: JobSpec) -> str:
        """The job's shell line: `spec.command()` with its stdout and stderr also appended to the log.

        `set -o pipefail` makes the pipeline's status the training's, not tee's. The line needs bash (the
        activation's `source` already does); a POSIX sh stops at `set -o pipefail` with an error rather
        than reporting a failed training as success. The group runs in a subshell, so the log path is
        absolute; its folder is made first, else tee could not open it."""
        log = posixpath.join(spec.workdir, spec.log_path)
        return (f"set -o pipefail && mkdir -p {shlex.quote(posixpath.dirname(log))} && "
                f"{{ {spec.command()}; }} 2>&1 | tee -a {shlex.quote(log)}")

    def submit(self, spec: JobSpec) -> Submitted:
        cfg = self.cfg
        body = {
            "name": spec.name, "logic_compute_group_id": cfg["logic_compute_group_id"], "project_id": cfg["project_id"],
            "workspace_id": cfg["workspace_id"], "framework": cfg["framework"], "command": self.command(spec),
            "task_priority": cfg["task_priority"],
            "framework_config": [{key: cfg[key] for key in ("image", "image_type", "instance_count", "shm_gi", "spec_id")}],
        }
        data = self._call(CREATE, body, resend=False)
        job_id = str(data.get("job_id") or "") if isinstance(data, Mapping) else ""
        if not job_id:
            raise ClusterError(f"{CREATE} answered success but no data.job_id",
                               "look for the job on the platform's job list before submitting again")
        return Submitted(job_id, f"{self.base_url}/jobs/distributedTrainingDetail/{job_id}")

    def query(self, job_ids: list[str]) -> dict[str, Status]:
        """The status of each job: one `train_job/detail` call per job, since the API has no batch call.

        A job the platform refuses to describe (a non-zero code other than a rate limit, a server error or
        an expired token) is left out, as the Backend protocol asks; the other failures raise."""
        statuses: dict[str, Status] = {}
        for job_id in dict.fromkeys(job_ids):
            try:
                data = self._call(DETAIL, {"job_id": job_id})
            except RejectedError:
                continue
            statuses[job_id] = to_status(data if isinstance(data, Mapping) else {})
        return statuses

    def cancel(self, job_id: str) -> None:
        self._call(STOP, {"job_id": job_id})

    def _scrub(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            if len(secret) >= 4:
                text = text.replace(secret, "<redacted>")
        return text

    def _bearer(self) -> str:
        """The current token, renewed first when it is missing or within 10% (at most a minute) of expiry."""
        if not self._token or self._clock() >= self._renew_at:
            try:
                data = self._call(AUTH, {"username": self._username, "password": self._password}, authed=False)
            except RejectedError as err:  # not a job's problem: query must not take it for a vanished job
                raise ClusterError(err.problem, CREDENTIALS) from None
            token = str(data.get("access_token") or "") if isinstance(data, Mapping) else ""
            if not token:
                raise ClusterError(f"{AUTH} answered success but no data.access_token", "is base_url the Qizhi API?")
            self._secrets.add(token)
            try:
                life = float(data.get("expires_in"))
            except (TypeError, ValueError):
                life = float("inf")  # no lifetime given: renewed when a call is refused
            self._token, self._renew_at = token, self._clock() + life - min(60.0, life / 10)
        return self._token

    def _exchange(self, path: str, body: dict[str, Any], token: str) -> tuple[int, Message | None, Any]:
        """One POST; (HTTP status, headers, the parsed JSON reply or None). Network failures propagate."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.base_url + path, json.dumps(body).encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                status, reply_headers, raw = response.status, response.headers, response.read()
        except urllib.error.HTTPError as err:
            status, reply_headers, raw = err.code, err.headers, err.read()
            err.close()
        if not raw.strip() and 200 <= status < 300:
            return status, reply_headers, {"code": 0}  # stop may answer 200 with an empty body (an unofficial reference)
        try:
            return status, reply_headers, json.loads(raw)
        except ValueError:
            return status, reply_headers, None

    def _call(self, path: str, body: dict[str, Any], authed: bool = True, resend: bool = True) -> Any:
        """POST `body` to `path` and return the reply's `data`, handling each failure as the module says.
        `resend=False`: the call is not idempotent (create), so a request that may have arrived is not sent again."""
        url, tries, reauthed = self.base_url + path, 0, False
        while True:
            wait: float | None = None
            try:
                status, headers, reply = self._exchange(path, body, self._bearer() if authed else "")
            except (OSError, http.client.HTTPException) as err:
                reason = self._scrub(str(getattr(err, "reason", "") or err) or type(err).__name__)
                if not resend and not _unsent(err):
                    raise ClusterError(f"{url}: no complete reply ({reason}); the job may or may not have been created",
                                       "look at the platform's job list before submitting again") from None
                problem = f"{url}: no reply ({reason})"
            else:
                reply = reply if isinstance(reply, dict) else None
                try:
                    code = int(reply["code"]) if reply is not None else None
                except (KeyError, TypeError, ValueError):
                    code = None
                message = self._scrub(str(reply.get("message") or "")) if reply is not None else ""
                said = f": {message}" if message else ""
                if status == 429 or code == 429:
                    wait = _retry_after(headers)
                    problem = f"{url}: rate limited (429){said}"
                elif status == 401 or code == EXPIRED:
                    if not authed or reauthed:
                        raise ClusterError(f"{url}: the platform refused the credentials (HTTP {status}, code {code}){said}",
                                           CREDENTIALS)
                    self._token, reauthed = "", True
                    continue
                elif code == VALIDATION:
                    field = field_of(message)
                    key = FIELDS.get(field, "")
                    hint = (f"check {key} in configs/cluster/qizhi.yaml" if key else
                            f"{field} is not a setting of configs/cluster/qizhi.yaml: the backend fills it in" if field else
                            "the platform named no field; compare the request with its API reference")
                    raise RejectedError(f"{url}: the platform rejected the field {field or '(unnamed)'}{said}",
                                        hint, code, field)
                elif status >= 500 or code == 500:
                    problem = f"{url}: platform error (HTTP {status}{'' if code is None else f', code {code}'}){said}"
                elif code is None:
                    raise ClusterError(f"{url}: HTTP {status} with no {{code, message, data}} reply",
                                       "is base_url (or QZ_BASE_URL) the Qizhi API?")
                elif code != 0:
                    raise RejectedError(f"{url}: the platform refused (code {code}){said}", "", code)
                else:
                    return reply.get("data") or {}
            tries += 1
            if tries >= ATTEMPTS or (wait is not None and wait > MAX_WAIT_S):
                raise TransientError(f"{problem} (tried {tries} times)", "try again later", retry_after=wait)
            self._sleep(wait if wait is not None else BACKOFF_S * 2 ** (tries - 1))
