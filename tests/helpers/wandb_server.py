"""A local stand-in for the W&B API that the real `wandb sync` (wandb 0.31, wandb-core) completes against.

    with WandbServer(api_key=KEY) as wb:          # http://127.0.0.1:<port>: the CLI's WANDB_BASE_URL
        env = {"WANDB_BASE_URL": wb.url, "WANDB_API_KEY": KEY, "HOME": str(tmp)}   # then `wandb sync <run dir>`
        wb.inject(Fault(500), Fault(500))           # the next two API requests fail
        wb.inject(Fault(429, retry_after="1"), path="file_stream")
        wb.inject(Fault.hang(30))                   # the next request gets no answer for 30 s
        run = wb.run("2yx8dez7")                    # a copy of what arrived for that run id
        run.history, run.config_values(), run.summary, run.complete, run.exit_code, run.files, run.upserts

What the CLI sends (observed from wandb 0.31.0; these are the endpoints served): POST /graphql
`UpsertBucket` twice per sync (first with entity null, which W&B answers with the key's default entity,
then with the run metadata in the config), `CreateRunFiles` (upload URLs: here /storage/... on the
stand-in, no key, like signed URLs) and a PUT each of wandb-summary.json, config.yaml,
wandb-metadata.json, requirements.txt; POST /files/<entity>/<project>/<run>/file_stream {"files":
{"wandb-history.jsonl": {"offset", "content": [json lines]}, "wandb-summary.json", "wandb-events.jsonl",
...}, "uploaded", "complete", "exitcode"}; POST /sdk/otel/v1/metrics (telemetry, no key: answered 200).
API requests carry `Authorization: Basic base64("api:<key>")`; a wrong key gets HTTP 401 with W&B's
body {"errors": [{"message": "user is not logged in", "path": [<field>], "extensions": {"code":
"PERMISSION_ERROR"}}], "data": {<field>: null}}. An operation the stand-in does not know is HTTP 400 and
is kept in `unknown`, so a newer CLI that asks for more shows up at once. UpsertBucket answers the
run's `historyLineCount` (rows held) as W&B does, and the CLI starts its history offsets there.

What the real CLI does (wandb 0.31.0; tests/tracking/test_wandb_standin*.py assert each point but the
endless retries, measured by hand with a 590 s timeout):
- Output goes to stderr only, stdout stays empty. Success, exit 0: `wandb: Syncing 1 run(s):`,
  `wandb:   <the .wandb file, relative to the cwd>`, `wandb: [wandb sync] Loaded credentials for <base
  url> from WANDB_API_KEY.`, `wandb: [<project>/<run id>] View run <run id> at <url>`, `wandb:
  [<project>/<run id>] Finished syncing <run dir>`; with progress lines in between when a step is slow
  (`setting up run <id>`, `updating run metadata`, `uploading history steps 0-4, summary`). The URL is
  <base url>/<entity>/<project>/runs/<run id>, the entity being the server's answer (an offline run has
  none); the app URL is the base URL for any host but api.wandb.ai.
- Exit 0 does NOT mean synced. A wrong key: exit 0, `wandb: ERROR user is not logged in`, no URL line.
  Retries given up: exit 0, `wandb: ERROR Error initializing run: POST <base url>/graphql giving up after
  N attempt(s)` then `wandb: ERROR while retrying: HTTP 500: <the server's error message>`. A torn tail
  (the writer died mid-record): exit 0, the URL line, the rows before the tear uploaded, the run closed on
  the server with exit code 1, and `wandb: ERROR Failed to sync all data from "<run dir>": the file ends
  with an incomplete record. If the run is still running, retry after it finishes or use `wandb beta sync
  --live`.` Only a malformed key (`Error: WANDB_API_KEY invalid: API key must have 40+ characters, has
  5.`), no key (`Error: No API key configured. Use `wandb login` to log in.`) or a missing path (exit 2,
  click's usage error) exit non-zero, before any request.
- It writes into the run folder: `run-<id>.wandb.syncstate` on every attempt, `run-<id>.wandb.synced` (empty)
  after a sync without an ERROR line; and `wandb/debug-cli.<user>.log` under the cwd on a usage error.
- A run with no exit record whose file ends on a whole record (a writer killed between flushes, or a
  live run) is synced with no error, closed on the server as exit code 1, and marked `.synced`: the
  CLI cannot tell a finished run from a crashed or running one; the caller must check the exit record.
- A run with a `.synced` marker is skipped: exit 0, `wandb: Skipped 1 synced run(s). Include with
  --no-skip-synced.`, `wandb: No runs to sync.`, no request. With --include-synced (or after a sync
  killed mid-upload, which leaves no marker) it is uploaded again from the server's historyLineCount on:
  rows already there are appended a second time. Re-syncing is not idempotent for history.
- Retries: 500s back off about 2, 5, 10, 19, 37 s, then every 60 s, with no end (still retrying after
  10 min; an unreachable host the same): the caller needs its own timeout, or WANDB__GRAPHQL_RETRY_MAX /
  WANDB__GRAPHQL_RETRY_WAIT_MAX_SECONDS (and the FILE_STREAM / FILE_TRANSFER twins) to bound them. A 429
  waits its Retry-After. A request with no answer is abandoned after 30 s (WANDB_HTTP_TIMEOUT) and retried.
- A sync killed with SIGKILL in flight leaves `.syncstate`, no `.synced`, and the run open on the server.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import re
import threading
import time
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler
from typing import Any

from .standin import StandIn, send

GRAPHQL, TELEMETRY = "/graphql", "/sdk/otel/v1/metrics"
REPLY_FIELD = {"Viewer": "viewer", "ServerFeaturesQuery": "serverInfo", "UpsertBucket": "upsertBucket",
               "CreateRunFiles": "createRunFiles"}


def operation_of(body: Any) -> str:
    """The GraphQL operation: `operationName` (wandb-core sends it), else the name in the query text (the public
    API client, `wandb.Api`, sends `query Run(...) {...}` alone)."""
    if not isinstance(body, dict):
        return ""
    found = re.search(r"^\s*(?:query|mutation)\s+(\w+)", str(body.get("query") or ""), re.MULTILINE)  # after `#graphql`
    return body.get("operationName") or (found.group(1) if found else "")


@dataclass
class Fault:
    """The answer to one request instead of the real one: HTTP `http` (None: the real answer) after `hang_s`."""

    http: int | None = 500
    retry_after: str | None = None
    hang_s: float = 0.0
    body: str = ""      # only a request whose (decompressed) body contains this, e.g. '"complete":true'

    @classmethod
    def hang(cls, seconds: float, body: str = "") -> Fault:
        return cls(http=None, hang_s=seconds, body=body)


@dataclass
class Request:
    method: str
    path: str
    operation: str      # the GraphQL operationName; "" elsewhere
    authorized: bool
    answer: int         # the HTTP status sent; 0 while unanswered (hanging)
    at: float           # time.monotonic() when it arrived


@dataclass
class Run:
    """What the server holds for one run (entity/project/run id), as W&B would show it."""

    run_id: str
    entity: str
    project: str
    config: dict[str, Any] = field(default_factory=dict)   # as upserted: {key: {"value": ...}, "_wandb": ...}
    upserts: int = 0
    lines: dict[str, dict[int, str]] = field(default_factory=dict)  # file_stream file -> offset -> line
    lines_received: int = 0            # history lines received, duplicates included
    complete: bool = False
    exit_code: int | None = None
    files: dict[str, bytes] = field(default_factory=dict)  # uploaded run files, by name

    @property
    def history(self) -> list[dict[str, Any]]:
        """The history rows, in offset order, each offset once (a re-sent offset replaces the row)."""
        rows = self.lines.get("wandb-history.jsonl", {})
        return [json.loads(rows[offset]) for offset in sorted(rows)]

    @property
    def summary(self) -> dict[str, Any]:
        lines = self.lines.get("wandb-summary.json", {})
        return json.loads(lines[max(lines)]) if lines else {}

    def config_values(self) -> dict[str, Any]:
        """The run config as the user passed it (W&B keeps each key as {"value": ...}, plus its own `_wandb`)."""
        return {key: item["value"] for key, item in self.config.items() if key != "_wandb"}


class WandbServer(StandIn):
    def __init__(self, api_key: str = "local-" + "0" * 40, entity: str = "researcher") -> None:
        self.api_key, self.entity = api_key, entity
        self.requests: list[Request] = []
        self.unknown: list[str] = []
        self.faults: list[tuple[str, Fault]] = []
        self._runs: dict[tuple[str, str, str], Run] = {}
        self.lock = threading.Lock()
        self.closing = threading.Event()  # ends every hang when the server stops
        self.hung = threading.Event()     # set when a request starts hanging (Fault.hang)
        self.credentials = "Basic " + base64.b64encode(f"api:{api_key}".encode()).decode()
        super().__init__()

    def inject(self, *faults: Fault, path: str = "", body: str = "") -> None:
        """The next len(faults) requests whose path contains `path` ("": any but telemetry), and whose body
        contains `body`, get these answers; Fault(None) lets one through (to fail a later one)."""
        with self.lock:
            self.faults.extend((path, replace(fault, body=body or fault.body)) for fault in faults)

    def run(self, run_id: str) -> Run:
        """A copy of what arrived for `run_id` (KeyError: nothing did)."""
        with self.lock:
            found = [run for key, run in self._runs.items() if key[2] == run_id]
            if not found:
                raise KeyError(run_id)
            return copy.deepcopy(found[0])

    def runs(self) -> dict[str, Run]:
        with self.lock:
            return {key[2]: copy.deepcopy(run) for key, run in self._runs.items()}

    def operations(self) -> list[str]:
        """Every request so far as `METHOD path [operation] -> status`, for asserting the protocol."""
        with self.lock:
            return [f"{r.method} {r.path}{' ' + r.operation if r.operation else ''} -> {r.answer}" for r in self.requests]

    def __exit__(self, *exc: Any) -> None:
        self.closing.set()
        super().__exit__(*exc)

    # -- the wire

    def on_post(self, request: BaseHTTPRequestHandler) -> None:
        self.serve(request, "POST")

    def on_put(self, request: BaseHTTPRequestHandler) -> None:
        self.serve(request, "PUT")

    def serve(self, request: BaseHTTPRequestHandler, method: str) -> None:
        seen = Request(method, request.path, "", False, 0, time.monotonic())
        raw = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        if request.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        body: Any = raw
        if method == "POST" and raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        seen.operation = operation_of(body)
        seen.authorized = request.headers.get("Authorization", "") == self.credentials
        with self.lock:
            self.requests.append(seen)
        fault = self.next_fault(request.path, raw)
        if fault is not None and fault.hang_s:
            self.hung.set()
            self.closing.wait(fault.hang_s)
        headers: dict[str, str] = {}
        if fault is not None and fault.http is not None:
            status, reply = fault.http, {"errors": [{"message": f"stand-in fault: HTTP {fault.http}"}]}
            if fault.retry_after is not None:
                headers["Retry-After"] = fault.retry_after
        else:
            with self.lock:
                status, reply = self.answer(method, request.path, seen.operation, seen.authorized, body)
        seen.answer = status
        send(request, status, b"" if reply is None else json.dumps(reply).encode(), headers=headers)

    def next_fault(self, path: str, raw: bytes) -> Fault | None:
        with self.lock:
            for i, (where, fault) in enumerate(self.faults):
                if ((where in path) if where else path != TELEMETRY) and fault.body.encode() in raw:
                    del self.faults[i]
                    return fault
        return None

    def answer(self, method: str, path: str, operation: str, authorized: bool, body: Any) -> tuple[int, Any]:
        """The service's real answer (called under the lock)."""
        if path == TELEMETRY:
            return 200, None
        if method == "PUT" and path.startswith("/storage/"):  # a signed upload URL: no API key, as on cloud storage
            _, _, entity, project, run_id, name = path.split("/", 5)
            self.bucket(entity, project, run_id).files[name] = body
            return 200, None
        if not authorized:
            field_name = REPLY_FIELD.get(operation, "viewer")
            return 401, {"errors": [{"message": "user is not logged in", "path": [field_name],
                                     "extensions": {"code": "PERMISSION_ERROR"}}], "data": {field_name: None}}
        if method == "POST" and path == GRAPHQL and isinstance(body, dict):
            return self.graphql(operation, body.get("variables") or {})
        parts = path.split("/")
        if method == "POST" and len(parts) == 6 and parts[1] == "files" and parts[5] == "file_stream" and isinstance(body, dict):
            self.file_stream(self.bucket(parts[2], parts[3], parts[4]), body)
            return 200, {"exitcode": None, "limits": {}}
        return 404, {"error": f"no route {method} {path}"}

    def bucket(self, entity: str, project: str, run_id: str) -> Run:
        return self._runs.setdefault((entity, project, run_id), Run(run_id, entity, project))

    def graphql(self, operation: str, variables: dict[str, Any]) -> tuple[int, Any]:
        if operation == "Viewer":
            return 200, {"data": {"viewer": {"id": "VXNlcjox", "entity": self.entity, "username": self.entity,
                                             "email": f"{self.entity}@example.invalid", "flags": "{}", "teams": {"edges": []}}}}
        if operation == "ServerFeaturesQuery":
            return 200, {"data": {"serverInfo": {"features": []}}}
        if operation == "UpsertBucket":
            return 200, {"data": {"upsertBucket": self.upsert(variables)}}
        if operation in ("Run", "RunHistoryKeys", "RunFullHistory"):  # the public API: read back what was synced
            return 200, {"data": {"project": {"run": self.public_run(operation, variables)}}}
        if operation == "GetDefaultEntity":
            return 200, {"data": {"viewer": {"id": "VXNlcjox", "entity": self.entity}}}
        if operation == "RunResumeStatus":  # a run logged with resume="allow" (Lightning's WandbLogger): is it there?
            return 200, {"data": {"model": self.resume_status(variables)}}
        if operation == "CreateRunFiles":
            base = f"{self.url}/storage/{variables['entity']}/{variables['project']}/{variables['run']}"
            return 200, {"data": {"createRunFiles": {
                "runID": self.run_node_id(variables["entity"], variables["project"], variables["run"]), "uploadHeaders": [],
                "files": [{"name": name, "uploadUrl": f"{base}/{name}"} for name in variables["files"]]}}}
        self.unknown.append(operation)
        return 400, {"errors": [{"message": f"the stand-in does not serve the operation {operation!r}"}]}

    def public_run(self, operation: str, variables: dict[str, Any]) -> dict[str, Any] | None:
        """`wandb.Api().run(path).history(samples=N)` (wandb 0.31 asks Run, RunHistoryKeys, RunFullHistory), answered in
        the shape of W&B's schema from the history this server received; an unknown run is null, as W&B answers."""
        run = self._runs.get((variables.get("entity") or self.entity, variables.get("project"), variables.get("name")))
        if run is None:
            return None
        lines = run.lines.get("wandb-history.jsonl", {})
        rows = [lines[k] for k in sorted(lines)]
        if operation == "RunHistoryKeys":
            return {"historyKeys": {"lastStep": len(rows) - 1, "keys": {}}}
        if operation == "RunFullHistory":
            return {"history": rows[:int(variables.get("samples") or len(rows))]}
        return {"id": self.run_node_id(run.entity, run.project, run.run_id), "tags": [], "name": run.run_id,
                "displayName": run.run_id, "sweepName": None, "state": "finished" if run.complete else "running",
                "config": json.dumps(run.config), "group": None, "jobType": None, "commit": None, "readOnly": False,
                "createdAt": "2026-01-01T00:00:00", "heartbeatAt": "2026-01-01T00:00:00", "description": None, "notes": None,
                "systemMetrics": "{}", "summaryMetrics": json.dumps(run.summary), "historyLineCount": len(rows),
                "user": {"name": self.entity, "username": self.entity}, "historyKeys": {"lastStep": len(rows) - 1}}

    def seed(self, entity: str, project: str, run_id: str, rows: list[dict[str, Any]]) -> None:
        """A run already on the server with these history rows (as if synced earlier)."""
        with self.lock:
            run = self.bucket(entity, project, run_id)
            run.lines["wandb-history.jsonl"] = {i: json.dumps(r) for i, r in enumerate(rows)}
            run.complete, run.exit_code = True, 0

    def resume_status(self, variables: dict[str, Any]) -> dict[str, Any] | None:
        """The project and, when the run exists, its bucket (what a resumed writer continues from); bucket null if not."""
        entity, project = variables.get("entity") or self.entity, variables.get("project") or "uncategorized"
        run = self._runs.get((entity, project, variables["name"]))
        project_node = {"id": base64.b64encode(f"Project:{entity}/{project}".encode()).decode(), "name": project,
                        "entity": {"id": base64.b64encode(f"Entity:{entity}".encode()).decode(), "name": entity}}
        if run is None:
            return {**project_node, "bucket": None}
        history = [run.lines["wandb-history.jsonl"][k] for k in sorted(run.lines.get("wandb-history.jsonl", {}))]
        return {**project_node, "bucket": {
            "id": self.run_node_id(entity, project, run.run_id), "name": run.run_id, "displayName": run.run_id,
            "summaryMetrics": json.dumps(run.summary), "config": json.dumps(run.config), "tags": [], "wandbConfig": None,
            "logLineCount": 0, "historyLineCount": len(history), "eventsLineCount": 0,
            "historyTail": json.dumps(history[-10:]), "eventsTail": "[]"}}

    def upsert(self, variables: dict[str, Any]) -> dict[str, Any]:
        """UpsertBucket: create or update the run; an empty entity is the key's default entity, as on W&B."""
        entity, project = variables.get("entity") or self.entity, variables.get("project") or "uncategorized"
        run_id = variables["name"]
        inserted = (entity, project, run_id) not in self._runs
        run = self.bucket(entity, project, run_id)
        run.upserts += 1
        if variables.get("config"):
            run.config.update(json.loads(variables["config"]))
        return {"bucket": {"id": self.run_node_id(entity, project, run_id), "name": run_id,
                           "displayName": variables.get("displayName") or run_id, "description": variables.get("description") or "",
                           "config": json.dumps(run.config), "sweepName": None,
                           "project": {"id": base64.b64encode(f"Project:{entity}/{project}".encode()).decode(), "name": project,
                                       "entity": {"id": base64.b64encode(f"Entity:{entity}".encode()).decode(), "name": entity}},
                           "historyLineCount": len(run.lines.get("wandb-history.jsonl", {}))},
                "inserted": inserted}

    @staticmethod
    def run_node_id(entity: str, project: str, run_id: str) -> str:
        return base64.b64encode(f"Run:v1:{run_id}:{project}:{entity}".encode()).decode()

    @staticmethod
    def file_stream(run: Run, body: dict[str, Any]) -> None:
        """Each file's lines land at offset, offset+1, ...: a re-sent chunk replaces, never duplicates."""
        for name, chunk in (body.get("files") or {}).items():
            lines = run.lines.setdefault(name, {})
            for i, line in enumerate(chunk.get("content") or []):
                lines[int(chunk.get("offset", 0)) + i] = line
            if name == "wandb-history.jsonl":
                run.lines_received += len(chunk.get("content") or [])
        if body.get("complete"):
            run.complete = True
        if body.get("exitcode") is not None:
            run.exit_code = int(body["exitcode"])
