"""A local stand-in for GitHub's REST API: the endpoints stage D6 uses, as GitHub documents them.

    with GitHubServer("owner/repo", tokens={TOKEN: ALL}, pulls={12}) as gh:
        env = {"GITHUB_API_URL": gh.url, "GITHUB_REPOSITORY": "owner/repo", "GITHUB_TOKEN": TOKEN}
        gh.inject("POST", "/issues/12/comments", Fault(403, headers={"Retry-After": "1"}, message=SECONDARY))
        gh.comments[12]                         # the comments of #12, oldest first
        gh.branches["hephaestus-results"]       # Branch(sha, files {path: bytes})
        gh.requests                             # every request: Request(method, path, query, headers, body)

Served under /repos/{owner}/{repo}: GET "" (default_branch), GET /pulls/{n}, GET and POST
/issues/{n}/comments (pages: per_page default 30, at most 100, `page`; a `Link` header with
rel="next"/"last"/"first"/"prev" as GitHub sends it), PATCH /issues/comments/{id}, GET
/git/ref/heads/{branch}, POST /git/refs, GET /contents/{path}?ref=B and PUT /contents/{path} (base64
content; updating needs the current blob `sha`: without it 422 "sha wasn't supplied", a stale one 409).
Authentication: `Authorization: Bearer <token>` (or `token <token>`); none or an unknown token is 401
"Bad credentials"; a token without the permission an endpoint needs (READ, COMMENT, CONTENTS) is 403
"Resource not accessible by personal access token". An unknown pull request, comment, ref, file or route
is 404 "Not Found". Error bodies are GitHub's: {"message", "documentation_url", "status"} (+ "errors" on
422). Every answer carries the x-ratelimit-* headers. Where GitHub says nothing the stand-in chooses:
commit shas are random, html_url points at https://github.com/<repo>/...
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .standin import StandIn, send

READ, COMMENT, CONTENTS = "read", "comment", "contents"
ALL = frozenset({READ, COMMENT, CONTENTS})
DOCS = "https://docs.github.com/rest"
SECONDARY = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
PRIMARY = "API rate limit exceeded for user ID 1."


@dataclass
class Request:
    method: str
    path: str                 # below /repos/{owner}/{repo} for the repository's endpoints, else the full path
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw: bytes


@dataclass
class Fault:
    """GitHub's error answer `status` with `message` and `headers`, instead of the real one."""

    status: int
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Branch:
    sha: str
    files: dict[str, bytes] = field(default_factory=dict)


def blob_sha(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def commit_sha() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex[:8]


def error(status: int, message: str, errors: list[dict[str, str]] | None = None) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {"message": message, "documentation_url": DOCS, "status": str(status)}
    if errors:
        body["errors"] = errors
    return status, body


class GitHubServer(StandIn):
    def __init__(self, repository: str = "owner/repo", tokens: dict[str, frozenset[str]] | None = None,
                 pulls: set[int] | None = None, default_branch: str = "main"):
        self.repository, self.default_branch = repository, default_branch
        self.tokens = dict(tokens or {})
        self.pulls = set(pulls or {1})
        self.comments: dict[int, list[dict[str, Any]]] = {n: [] for n in self.pulls}
        self.branches = {default_branch: Branch(commit_sha(), {"README.md": b"# repo\n"})}
        self.requests: list[Request] = []
        self.faults: list[tuple[str, str, Fault]] = []
        self.ids = itertools.count(1_000_001)
        self.remaining = 5000
        self.lock = threading.Lock()
        super().__init__()

    # -- plumbing ---------------------------------------------------------------------------------------------
    def on_get(self, request: BaseHTTPRequestHandler) -> None:
        self.serve("GET", request)

    def on_post(self, request: BaseHTTPRequestHandler) -> None:
        self.serve("POST", request)

    def on_put(self, request: BaseHTTPRequestHandler) -> None:
        self.serve("PUT", request)

    def on_patch(self, request: BaseHTTPRequestHandler) -> None:
        self.serve("PATCH", request)

    def inject(self, method: str, path: str, *faults: Fault) -> None:
        """The next len(faults) `method` requests whose repository path matches the regex `path` get these answers."""
        with self.lock:
            self.faults += [(method, path, f) for f in faults]

    def serve(self, method: str, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        raw = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        prefix = f"/repos/{self.repository}"
        path = unquote(parts.path)
        path = path[len(prefix):] if path == prefix or path.startswith(prefix + "/") else path
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self.lock:
            self.requests.append(Request(method, path, query, dict(request.headers.items()), body, raw))
            fault = next((f for f in self.faults if f[0] == method and re.fullmatch(f[1], path)), None)
            if fault is not None:
                self.faults.remove(fault)
                status, payload = error(fault[2].status, fault[2].message or {403: "Forbidden", 429: "Too Many Requests",
                                                                               500: "Server Error"}.get(fault[2].status, "error"))
                headers = self.limits() | fault[2].headers
            else:
                status, payload, extra = self.handle(method, path, query, request.headers.get("Authorization", ""), body,
                                                     unquote(parts.path).startswith(prefix))
                headers = self.limits() | extra
        send(request, status, json.dumps(payload).encode(), "application/json; charset=utf-8", headers)

    def limits(self) -> dict[str, str]:
        self.remaining = max(0, self.remaining - 1)
        return {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": str(self.remaining),
                "x-ratelimit-reset": str(int(time.time()) + 3600), "x-ratelimit-resource": "core",
                "x-github-api-version-selected": "2022-11-28"}

    def paths(self, method: str | None = None) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests if method in (None, r.method)]

    # -- GitHub -----------------------------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, str], authorization: str, body: Any,
               in_repo: bool) -> tuple[int, Any, dict[str, str]]:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() not in ("bearer", "token") or token not in self.tokens:
            return (*error(401, "Bad credentials"), {})
        if not in_repo:
            return (*error(404, "Not Found"), {})
        routes = [("GET", r"", READ, self.repo), ("GET", r"/pulls/(\d+)", READ, self.pull),
                  ("GET", r"/issues/(\d+)/comments", READ, self.list_comments),
                  ("POST", r"/issues/(\d+)/comments", COMMENT, self.create_comment),
                  ("PATCH", r"/issues/comments/(\d+)", COMMENT, self.update_comment),
                  ("GET", r"/git/ref/heads/(.+)", READ, self.get_ref), ("POST", r"/git/refs", CONTENTS, self.create_ref),
                  ("GET", r"/contents/(.+)", READ, self.get_file), ("PUT", r"/contents/(.+)", CONTENTS, self.put_file)]
        for verb, pattern, need, action in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                if need not in self.tokens[token]:
                    return (*error(403, "Resource not accessible by personal access token"), {})
                status, payload, *headers = action(*match.groups(), query=query, body=body)
                return status, payload, headers[0] if headers else {}
        return (*error(404, "Not Found"), {})

    def repo(self, **_: Any) -> tuple[int, Any]:
        owner, name = self.repository.split("/")
        return 200, {"id": 1, "name": name, "full_name": self.repository, "owner": {"login": owner}, "private": False,
                     "html_url": f"https://github.com/{self.repository}", "default_branch": self.default_branch}

    def pull(self, number: str, **_: Any) -> tuple[int, Any]:
        if int(number) not in self.pulls:
            return error(404, "Not Found")
        return 200, {"number": int(number), "state": "open", "html_url": f"https://github.com/{self.repository}/pull/{number}",
                     "head": {"ref": "feature", "sha": commit_sha()}, "base": {"ref": self.default_branch}}

    def list_comments(self, number: str, query: dict[str, str], **_: Any) -> tuple[int, Any, dict[str, str]]:
        if int(number) not in self.comments:
            return (*error(404, "Not Found"), {})
        per_page = min(100, int(query.get("per_page", "30")))
        page = max(1, int(query.get("page", "1")))
        items = self.comments[int(number)]
        last = max(1, -(-len(items) // per_page))
        base = f"{self.url}/repos/{self.repository}/issues/{number}/comments?per_page={per_page}&page="
        links = [(page + 1, "next"), (last, "last")] if page < last else []
        links += [(1, "first"), (page - 1, "prev")] if page > 1 else []
        headers = {"Link": ", ".join(f'<{base}{n}>; rel="{rel}"' for n, rel in links)} if links else {}
        return 200, items[(page - 1) * per_page: page * per_page], headers

    def create_comment(self, number: str, body: Any, **_: Any) -> tuple[int, Any]:
        if int(number) not in self.comments:
            return error(404, "Not Found")
        if not isinstance(body, dict) or not body.get("body"):
            return error(422, "Validation Failed", [{"resource": "IssueComment", "code": "missing_field", "field": "body"}])
        cid, stamp = next(self.ids), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        comment = {"id": cid, "node_id": f"IC_{cid}", "body": body["body"], "user": {"login": "github-actions[bot]"},
                   "url": f"{self.url}/repos/{self.repository}/issues/comments/{cid}",
                   "html_url": f"https://github.com/{self.repository}/pull/{number}#issuecomment-{cid}",
                   "issue_number": int(number), "created_at": stamp, "updated_at": stamp}
        self.comments[int(number)].append(comment)
        return 201, {k: v for k, v in comment.items() if k != "issue_number"}

    def update_comment(self, cid: str, body: Any, **_: Any) -> tuple[int, Any]:
        comment = next((c for cs in self.comments.values() for c in cs if c["id"] == int(cid)), None)
        if comment is None:
            return error(404, "Not Found")
        if not isinstance(body, dict) or not body.get("body"):
            return error(422, "Validation Failed", [{"resource": "IssueComment", "code": "missing_field", "field": "body"}])
        comment["body"], comment["updated_at"] = body["body"], time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return 200, {k: v for k, v in comment.items() if k != "issue_number"}

    def ref(self, name: str) -> dict[str, Any]:
        return {"ref": f"refs/heads/{name}", "node_id": f"REF_{name}",
                "url": f"{self.url}/repos/{self.repository}/git/refs/heads/{name}",
                "object": {"sha": self.branches[name].sha, "type": "commit"}}

    def get_ref(self, name: str, **_: Any) -> tuple[int, Any]:
        return (200, self.ref(name)) if name in self.branches else error(404, "Not Found")

    def create_ref(self, body: Any, **_: Any) -> tuple[int, Any]:
        ref, sha = (body or {}).get("ref", ""), (body or {}).get("sha", "")
        if not ref.startswith("refs/") or ref.count("/") < 2:
            return error(422, "Reference name must start with 'refs/' and have at least two slashes.")
        source = next((b for b in self.branches.values() if b.sha == sha), None)
        if source is None:
            return error(422, "Object does not exist")
        name = ref.removeprefix("refs/heads/")
        if name in self.branches:
            return error(422, "Reference already exists")
        self.branches[name] = Branch(sha, dict(source.files))
        return 201, self.ref(name)

    def content(self, branch: str, path: str) -> dict[str, Any]:
        data = self.branches[branch].files[path]
        return {"type": "file", "encoding": "base64", "size": len(data), "name": path.rsplit("/", 1)[-1], "path": path,
                "content": base64.encodebytes(data).decode(), "sha": blob_sha(data),
                "url": f"{self.url}/repos/{self.repository}/contents/{path}?ref={branch}",
                "html_url": f"https://github.com/{self.repository}/blob/{branch}/{path}",
                "download_url": f"https://raw.githubusercontent.com/{self.repository}/{branch}/{path}"}

    def get_file(self, path: str, query: dict[str, str], **_: Any) -> tuple[int, Any]:
        branch = query.get("ref", self.default_branch)
        if branch not in self.branches:
            return error(404, f"No commit found for the ref {branch}")
        if path not in self.branches[branch].files:
            return error(404, "Not Found")
        return 200, self.content(branch, path)

    def put_file(self, path: str, body: Any, **_: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not body.get("message") or "content" not in body:
            missing = "message" if not isinstance(body, dict) or not body.get("message") else "content"
            return error(422, f"Invalid request.\n\n\"{missing}\" wasn't supplied.")
        branch = body.get("branch", self.default_branch)
        if branch not in self.branches:
            return error(404, f"Branch {branch} not found")
        try:
            data = base64.b64decode(body["content"], validate=True)
        except ValueError:
            return error(422, "content is not valid Base64")
        files = self.branches[branch].files
        if path in files:
            if "sha" not in body:
                return error(422, "Invalid request.\n\n\"sha\" wasn't supplied.")
            if body["sha"] != blob_sha(files[path]):
                return error(409, f"{path} does not match {body['sha']}")
        created = path not in files
        files[path] = data
        self.branches[branch].sha = commit_sha()
        return (201 if created else 200), {"content": self.content(branch, path),
                                           "commit": {"sha": self.branches[branch].sha, "message": body["message"]}}
