"""A local stand-in for the Hugging Face hub that the real huggingface_hub 2.4.0 client downloads from (HF_ENDPOINT).

    with HubServer() as hub:                         # http://127.0.0.1:<port>, and its "CDN" on another port
        env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": "hf_good", "HF_HOME": str(tmp)}
        hub.repo("microsoft/resnet-18").files        # {path: bytes}: what it serves (tests/data/hub/, see hf_fixtures.py)
        hub.repo("microsoft/resnet-18").commit       # the commit `main` resolves to (40 hex digits)
        hub.gate("microsoft/resnet-18")              # gated: a download needs a valid token (HTTP 401 GatedRepo without)
        hub.inject(503, path="/api/models/")         # the next request whose path contains it fails once with HTTP 503
        hub.requests                                 # every request: method, path, query, Authorization header, server

Repositories are the folders under tests/data/hub/{models,datasets}/<namespace>/<name>/: microsoft/resnet-18 and
google-bert/bert-base-chinese (tiny models saved with save_pretrained), datasets ylecun/mnist and stanfordnlp/imdb
(tiny parquet files). `add(repo_id, files, repo_type)` serves any other content.

What the real client does against it (observed from huggingface_hub 2.4.0 with hf_hub_download per file, HfApi.repo_info
and list_repo_tree; tests/hub/ assert each point):
- Resolving a revision: GET /api/models/<repo>/revision/<rev> (datasets: /api/datasets/...), JSON with `id`, `sha`
  (the commit), `siblings`; nothing else is needed. No retry: an HTTP 5xx here fails at once (HfHubHTTPError).
- Listing: GET /api/models/<repo>/tree/<commit>?recursive=true&expand=false, JSON list of {"type": "file", "path",
  "size", "oid" (git blob sha1)} with "lfs": {"oid": sha256, "size", "pointerSize"} for LFS files (here: the
  extensions .gitattributes marks: safetensors, bin, h5, msgpack, onnx, ot, parquet), and {"type": "directory"}.
  One page: no Link header. An HTTP 5xx is retried after 1, 2, 4, 8, 8 s.
- Each file: HEAD /<repo>/resolve/<commit>/<path> (datasets: /datasets/<repo>/resolve/...) with
  `Accept-Encoding: identity`, not following a redirect to another origin. A plain file answers 200 with ETag (its
  blob sha1, quoted), X-Repo-Commit and Content-Length; an LFS file answers 302 to the CDN (another port: another
  origin, as the hub's signed URLs) with X-Linked-Etag (its sha256), X-Linked-Size and X-Repo-Commit. Then GET
  of the file (plain: the same URL; LFS: the CDN URL, WITHOUT the Authorization header). A HEAD that fails with a
  5xx is asked once more with retries before the client gives up.
- HF_TOKEN goes as `Authorization: Bearer <token>` to the hub's own origin only. A gated repository without a
  valid token: 401 with X-Error-Code GatedRepo on resolve (info and tree stay public, as on the hub); an
  invalid token: 401 with X-Error-Message "Invalid credentials in Authorization header" on any request; an
  unknown repository: 404 X-Error-Code RepoNotFound; an unknown revision: 404 RevisionNotFound; a missing file:
  404 EntryNotFound (with X-Repo-Commit). The client maps the codes to GatedRepoError, HfHubHTTPError (401),
  RepositoryNotFoundError, RevisionNotFoundError and RemoteEntryNotFoundError.
- Once a day the client also asks GET /api/agent-harnesses (a registry for its user agent): answered 404 here, as
  any unknown path, and the client goes on.
- Written by the client with hf_hub_download(local_dir=...): the file, and local_dir/.cache/huggingface/
  (download metadata, a .gitignore). With HF_HOME set it reads no token file of the user's.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from .standin import StandIn

DATA = Path(__file__).resolve().parents[1] / "data" / "hub"
LFS_SUFFIXES = frozenset({".bin", ".h5", ".msgpack", ".onnx", ".ot", ".parquet", ".safetensors"})
VALID_TOKENS = frozenset({"hf_good"})


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    repo_id: str
    repo_type: str  # "model" or "dataset"
    files: dict[str, bytes]
    gated: bool = False
    sha256: dict[str, str] = field(default_factory=dict)  # of each file, computed once (a benchmark serves 400 MB)
    commit: str = ""  # what `main` resolves to: a digest of the repository's content

    def __post_init__(self) -> None:
        self.sha256 = {path: hashlib.sha256(data).hexdigest() for path, data in self.files.items()}
        listing = "".join(f"{p}\0{self.sha256[p]}\n" for p in sorted(self.files))
        self.commit = hashlib.sha1(f"{self.repo_type}/{self.repo_id}\n{listing}".encode()).hexdigest()

    def lfs(self, path: str) -> bool:
        return Path(path).suffix in LFS_SUFFIXES

    def entry(self, path: str) -> dict[str, Any]:
        data = self.files[path]
        if not self.lfs(path):
            return {"type": "file", "oid": git_blob_sha1(data), "size": len(data), "path": path}
        pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256[path]}\nsize {len(data)}\n".encode()
        return {"type": "file", "oid": git_blob_sha1(pointer), "size": len(data), "path": path,
                "lfs": {"oid": self.sha256[path], "size": len(data), "pointerSize": len(pointer)}}

    def tree(self, under: str, recursive: bool) -> list[dict[str, Any]]:
        prefix = under.strip("/") + "/" if under.strip("/") else ""
        out: dict[str, dict[str, Any]] = {}
        for path in sorted(self.files):
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix):].split("/")
            for depth in range(1, len(parts)):
                folder = prefix + "/".join(parts[:depth])
                if recursive or depth == 1:
                    out.setdefault(folder, {"type": "directory", "oid": hashlib.sha1(folder.encode()).hexdigest(), "size": 0,
                                            "path": folder})
            if recursive or len(parts) == 1:
                out[path] = self.entry(path)
        return list(out.values())


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    server: str  # "hub" or "cdn"


@dataclass
class Fault:
    status: int
    path: str  # injected into the next request whose path contains this
    headers: dict[str, str] = field(default_factory=dict)


def reply(request: BaseHTTPRequestHandler, status: int, body: bytes | memoryview = b"", headers: dict[str, str] | None = None,
          content_type: str = "application/json") -> None:
    """One answer; a HEAD gets the headers (Content-Length of the body it would get) and no body."""
    try:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        pass


def error(request: BaseHTTPRequestHandler, status: int, code: str | None, message: str, extra: dict[str, str] | None = None) -> None:
    headers = {"X-Error-Message": message, **({"X-Error-Code": code} if code else {}), **(extra or {})}
    reply(request, status, json.dumps({"error": message}).encode(), headers)


class Cdn(StandIn):
    """Where LFS files live: URLs the hub redirects to, on another origin, that need no token (signed, as the hub's)."""

    def __init__(self, hub: HubServer) -> None:
        super().__init__()
        self.hub = hub

    def on_get(self, request: BaseHTTPRequestHandler) -> None:
        self.hub.serve_blob(request)

    def on_head(self, request: BaseHTTPRequestHandler) -> None:
        self.hub.serve_blob(request)


class HubServer(StandIn):
    def __init__(self, data: Path = DATA) -> None:
        super().__init__()
        self.cdn = Cdn(self)
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        for repo_type, folder in (("model", "models"), ("dataset", "datasets")):
            for path in sorted((data / folder).glob("*/*")):
                files = {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
                self.add(path.relative_to(data / folder).as_posix(), files, repo_type)

    def __enter__(self) -> HubServer:
        self.cdn.__enter__()
        return super().__enter__()

    def __exit__(self, *exc: Any) -> None:
        super().__exit__(*exc)
        self.cdn.__exit__(*exc)

    # ------------------------------------------------------------ what the tests set up and read

    def add(self, repo_id: str, files: dict[str, bytes], repo_type: str = "model") -> Repo:
        self.repos[repo_type, repo_id] = Repo(repo_id, repo_type, dict(files))
        return self.repos[repo_type, repo_id]

    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        return self.repos[repo_type, repo_id]

    def gate(self, repo_id: str, repo_type: str = "model") -> None:
        self.repos[repo_type, repo_id].gated = True

    def inject(self, status: int, path: str = "", headers: dict[str, str] | None = None) -> None:
        with self.lock:
            self.faults.append(Fault(status, path, dict(headers or {})))

    # ------------------------------------------------------------ the protocol

    def on_get(self, request: BaseHTTPRequestHandler) -> None:
        self.route(request)

    def on_head(self, request: BaseHTTPRequestHandler) -> None:
        self.route(request)

    def log(self, request: BaseHTTPRequestHandler, server: str) -> tuple[str, dict[str, list[str]]]:
        url = urlsplit(request.path)
        with self.lock:
            self.requests.append(Request(request.command, url.path, parse_qs(url.query), request.headers.get("Authorization"), server))
        return url.path, parse_qs(url.query)

    def fault(self, path: str) -> Fault | None:
        with self.lock:
            found = next((f for f in self.faults if f.path in path), None)
            if found:
                self.faults.remove(found)
            return found

    def route(self, request: BaseHTTPRequestHandler) -> None:
        path, query = self.log(request, "hub")
        injected = self.fault(path)
        if injected:
            return error(request, injected.status, None, f"stand-in: injected HTTP {injected.status}", injected.headers)
        auth = request.headers.get("Authorization") or ""
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
        if auth and token not in VALID_TOKENS:
            return error(request, 401, None, "Invalid credentials in Authorization header")
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[:1] == ["api"] and len(parts) >= 6 and parts[1] in ("models", "datasets"):
            repo_type, repo_id, kind, rev = parts[1][:-1], "/".join(parts[2:4]), parts[4], parts[5]
            repo = self.find(request, repo_type, repo_id, rev)
            if repo is None:
                return None
            if kind == "revision" and len(parts) == 6:
                return self.info(request, repo)
            if kind == "tree":
                listing = repo.tree("/".join(parts[6:]), query.get("recursive", ["false"])[0].lower() == "true")
                return reply(request, 200, json.dumps(listing).encode())
        else:
            repo_type = "dataset" if parts[:1] == ["datasets"] else "model"
            rest = parts[1:] if repo_type == "dataset" else parts
            if len(rest) >= 5 and rest[2] == "resolve":
                repo = self.find(request, repo_type, "/".join(rest[:2]), rest[3])
                if repo is None:
                    return None
                if repo.gated and token is None:
                    return error(request, 401, "GatedRepo", f"Access to {repo_type} {repo.repo_id} is restricted. You must have "
                                 "access to it and be authenticated to access it. Please log in.")
                return self.resolve(request, repo, "/".join(rest[4:]))
        return error(request, 404, None, "Sorry, we can't find the page you are looking for.")

    def find(self, request: BaseHTTPRequestHandler, repo_type: str, repo_id: str, rev: str) -> Repo | None:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            error(request, 404, "RepoNotFound", "Repository not found")
        elif rev not in ("main", repo.commit):
            error(request, 404, "RevisionNotFound", f"Invalid rev id: {rev}")
            return None
        return repo

    def info(self, request: BaseHTTPRequestHandler, repo: Repo) -> None:
        body = {"_id": repo.commit[:24], "id": repo.repo_id, "author": repo.repo_id.split("/")[0], "sha": repo.commit,
                "lastModified": "2026-11-01T00:00:00.000Z", "private": False, "disabled": False,
                "gated": "manual" if repo.gated else False, "tags": [], "downloads": 0, "likes": 0,
                "siblings": [{"rfilename": p} for p in sorted(repo.files)]}
        if repo.repo_type == "model":
            body.update({"modelId": repo.repo_id, "library_name": "transformers"})
        reply(request, 200, json.dumps(body).encode())

    def resolve(self, request: BaseHTTPRequestHandler, repo: Repo, path: str) -> None:
        commit = {"X-Repo-Commit": repo.commit}
        if path not in repo.files:
            return error(request, 404, "EntryNotFound", f"{path} does not exist on \"main\"", commit)
        data, entry = repo.files[path], repo.entry(path)
        if repo.lfs(path):
            sha = entry["lfs"]["oid"]
            location = f"{self.cdn.url}/repos/{sha[:2]}/{sha}?file={quote(Path(path).name)}&expires=4102444800&signature=stand-in"
            headers = {**commit, "Location": location, "ETag": f'"{entry["oid"]}"', "X-Linked-Etag": f'"{sha}"',
                       "X-Linked-Size": str(len(data))}
            return reply(request, 302, b"", headers, "text/plain")
        reply(request, 200, data, {**commit, "ETag": f'"{entry["oid"]}"', "Accept-Ranges": "bytes"}, "application/octet-stream")

    def serve_blob(self, request: BaseHTTPRequestHandler) -> None:
        path, _ = self.log(request, "cdn")
        injected = self.fault(path)
        if injected:
            return error(request, injected.status, None, f"stand-in CDN: injected HTTP {injected.status}", injected.headers)
        sha = path.rsplit("/", 1)[-1]
        blob = next((d for r in self.repos.values() for p, d in r.files.items() if r.lfs(p) and r.sha256[p] == sha), None)
        if blob is None:
            return reply(request, 404, b"<Error><Code>NoSuchKey</Code></Error>", content_type="application/xml")
        start = 0
        ranged = request.headers.get("Range", "")
        if ranged.startswith("bytes=") and ranged[6:].split("-")[0].isdigit():
            start = int(ranged[6:].split("-")[0])
        headers = {"ETag": f'"{sha}"', "Accept-Ranges": "bytes"}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(blob) - 1}/{len(blob)}"
        reply(request, 206 if start else 200, memoryview(blob)[start:], headers, "application/octet-stream")
