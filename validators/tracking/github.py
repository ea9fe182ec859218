"""The GitHub REST API as stage D6 uses it (stdlib urllib): a pull request's comments, files on a branch.

    gh = GitHub.from_env(os.environ)          # GITHUB_API_URL (default https://api.github.com), GITHUB_REPOSITORY, GITHUB_TOKEN
    gh.pull(12)                                # the pull request, or GitHubError "no pull request #12 in owner/name"
    gh.ensure_branch("hephaestus-results")     # made from the default branch (git refs API) when missing
    url = gh.put_file("results/<run>/loss_by_step.png", png, "hephaestus-results", "D6: results of <run>")
    old = gh.find_comment(12, marker)          # the first comment holding `marker`, through every page
    gh.update_comment(old["id"], body) if old else gh.create_comment(12, body)

Every request sends `Authorization: Bearer <token>` and GitHub's versioned media type. Rate limits
(HTTP 429, or 403 with `Retry-After` or `x-ratelimit-remaining: 0`) are waited out as GitHub documents
(Retry-After seconds, else until `x-ratelimit-reset`, else a minute), at most `attempts` times and never
longer than `max_wait_s` at once; 5xx answers are retried with a doubling pause. Any other failure is a
GitHubError that says what was being done and what the token needs. The token is never printed: every
message is scrubbed of it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from ..errors import HephaestusError

API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')
PERMISSIONS = {"comment": "`pull-requests: write` (or `issues: write`)",
               "contents": "`contents: write` (or --no-images: no PNG stored)",
               "read": "read access to the repository"}


class GitHubError(HephaestusError):
    """A GitHub request failed: what was being done, GitHub's answer, and what to do (never the token)."""


@dataclass(frozen=True)
class Reply:
    status: int
    data: Any
    headers: Mapping[str, str]


def blob_sha(content: bytes) -> str:
    """Git's object id of a file with this content: what the contents API reports as `sha`."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")[:300]


class GitHub:
    def __init__(self, repository: str, token: str, api_url: str = API_URL, *, attempts: int = 4,
                 max_wait_s: float = 120.0, timeout_s: float = 30.0, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time):
        self.repo, self.token, self.api = repository, token, api_url.rstrip("/")
        self.attempts, self.max_wait_s, self.timeout_s, self.sleep, self.clock = attempts, max_wait_s, timeout_s, sleep, clock

    @classmethod
    def from_env(cls, env: Mapping[str, str], **options: Any) -> GitHub:
        """GITHUB_REPOSITORY (`owner/name`), GITHUB_TOKEN and GITHUB_API_URL, from the environment only."""
        repository, token = env.get("GITHUB_REPOSITORY", ""), env.get("GITHUB_TOKEN", "")
        if not REPOSITORY.match(repository):
            raise GitHubError(f"GITHUB_REPOSITORY={repository!r}: expected owner/name (GitHub Actions sets it; "
                              "elsewhere export it)")
        if not token:
            raise GitHubError("GITHUB_TOKEN is not set: the comment needs a token with "
                              f"{PERMISSIONS['comment']} (and `contents: write` for the images), from the "
                              "environment only (in a workflow: env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }})")
        api = env.get("GITHUB_API_URL") or API_URL
        if urlsplit(api).scheme not in ("http", "https") or not urlsplit(api).netloc:
            raise GitHubError(f"GITHUB_API_URL={api!r} is not an http(s) URL")
        return cls(repository, token, api, **options)

    def scrub(self, text: str) -> str:
        return text.replace(self.token, "***") if self.token else text

    # -- requests ---------------------------------------------------------------------------------------------
    def call(self, method: str, path: str, body: Any = None, *, what: str, need: str = "read",
             missing: str = "", allow: tuple[int, ...] = ()) -> Reply:
        """One request (`path` below the API root, or a full URL on the API's host), retried on rate limits
        and 5xx; a 2xx answer or a status in `allow` is returned, anything else raised as a GitHubError."""
        url = path if path.startswith(("http://", "https://")) else self.api + path
        if urlsplit(url).netloc != urlsplit(self.api).netloc:
            raise GitHubError(f"refusing to send the token to {urlsplit(url).netloc} while {what} (not {self.api})")
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/vnd.github+json",
                   "X-GitHub-Api-Version": API_VERSION, "User-Agent": "hephaestus-results"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(1, self.attempts + 1):
            request = urllib.request.Request(url, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
                    return Reply(reply.status, _parse(reply.read()), dict(reply.headers.items()))
            except urllib.error.HTTPError as err:
                status, answer, got = err.code, _parse(err.read()), {k.lower(): v for k, v in err.headers.items()}
            except (urllib.error.URLError, TimeoutError, OSError) as err:
                reason = getattr(err, "reason", err)
                raise GitHubError(self.scrub(f"cannot reach {self.api} while {what} ({reason}): check GITHUB_API_URL "
                                             "and the network")) from None
            if status in allow:
                return Reply(status, answer, got)
            wait = self.retry_after(status, answer, got, attempt)
            if wait is None:
                raise self.failure(status, answer, what, need, missing)
            if attempt == self.attempts or wait > self.max_wait_s:
                limited = "rate limited" if status in (403, 429) else f"answering {status}"
                raise GitHubError(self.scrub(f"GitHub kept {limited} while {what} ({attempt} attempt(s); next try "
                                             f"in {wait:.0f} s): {self.message(answer)}; try again later"))
            self.sleep(wait)
        raise AssertionError("unreachable: the loop returns or raises")

    def retry_after(self, status: int, answer: Any, headers: Mapping[str, str], attempt: int) -> float | None:
        """Seconds to wait before trying again, or None when the answer is final."""
        limited = status == 429 or status == 403 and (
            "retry-after" in headers or headers.get("x-ratelimit-remaining") == "0"
            or "rate limit" in self.message(answer).lower())
        if limited:
            if headers.get("retry-after", "").strip().isdigit():
                return float(headers["retry-after"])
            if headers.get("x-ratelimit-remaining") == "0" and headers.get("x-ratelimit-reset", "").isdigit():
                return max(1.0, float(headers["x-ratelimit-reset"]) - self.clock() + 1)
            return 60.0  # GitHub: without either header, wait at least one minute
        if status in (500, 502, 503, 504):
            return float(2 ** (attempt - 1))
        return None

    @staticmethod
    def message(answer: Any) -> str:
        if isinstance(answer, dict):
            errors = "; ".join(str(e.get("message") or e.get("code") or e) if isinstance(e, dict) else str(e)
                               for e in answer.get("errors") or [])
            return str(answer.get("message", "")) + (f" ({errors})" if errors else "")
        return str(answer or "")

    def failure(self, status: int, answer: Any, what: str, need: str, missing: str) -> GitHubError:
        said = self.message(answer)
        if status == 401:
            text = f"GitHub refused the token while {what} (401 {said}): GITHUB_TOKEN is wrong, expired or revoked"
        elif status == 403:
            text = f"forbidden while {what} (403 {said}): the token needs {PERMISSIONS[need]} on {self.repo}"
        elif status == 404:
            text = missing or (f"{what}: 404 {said} ({self.repo} does not exist, or the token cannot see it: "
                               f"it needs {PERMISSIONS[need]})")
        elif status == 422:
            text = f"GitHub rejected the request while {what} (422 {said})"
        else:
            text = f"GitHub answered {status} while {what}: {said}"
        return GitHubError(self.scrub(text))

    def pages(self, path: str, *, what: str, missing: str = "") -> list[Any]:
        """Every item of a list endpoint, following the `Link: <...>; rel="next"` header."""
        items: list[Any] = []
        url: str | None = path
        while url:
            reply = self.call("GET", url, what=what, missing=missing)
            items += reply.data or []
            found = NEXT.search({k.lower(): v for k, v in reply.headers.items()}.get("link", ""))
            url = found.group(1) if found else None
        return items

    # -- what D6 does -----------------------------------------------------------------------------------------
    def pull(self, number: int) -> dict[str, Any]:
        return self.call("GET", f"/repos/{self.repo}/pulls/{number}", what=f"reading pull request #{number}",
                         missing=f"no pull request #{number} in {self.repo} (404): check the number, or that the "
                                 "token can see the repository").data

    def comments(self, number: int) -> list[dict[str, Any]]:
        return self.pages(f"/repos/{self.repo}/issues/{number}/comments?per_page=100",
                          what=f"listing the comments of #{number}")

    def find_comment(self, number: int, marker: str) -> dict[str, Any] | None:
        return next((c for c in self.comments(number) if marker in (c.get("body") or "")), None)

    def create_comment(self, number: int, body: str) -> dict[str, Any]:
        return self.call("POST", f"/repos/{self.repo}/issues/{number}/comments", {"body": body}, need="comment",
                         what=f"commenting on #{number}").data

    def update_comment(self, comment_id: int, body: str) -> dict[str, Any]:
        return self.call("PATCH", f"/repos/{self.repo}/issues/comments/{comment_id}", {"body": body}, need="comment",
                         what=f"updating comment {comment_id}").data

    def ensure_branch(self, branch: str) -> str:
        """The branch's head commit; the branch is made from the default branch's head when it does not exist."""
        ref = f"/repos/{self.repo}/git/ref/heads/{quote(branch)}"
        found = self.call("GET", ref, what=f"reading branch {branch}", allow=(404,))
        if found.status == 200:
            return found.data["object"]["sha"]
        default = self.call("GET", f"/repos/{self.repo}", what=f"reading {self.repo}").data["default_branch"]
        head = self.call("GET", f"/repos/{self.repo}/git/ref/heads/{quote(default)}",
                         what=f"reading the default branch {default}").data["object"]["sha"]
        self.call("POST", f"/repos/{self.repo}/git/refs", {"ref": f"refs/heads/{branch}", "sha": head}, need="contents",
                  what=f"creating branch {branch}")
        return head

    def put_file(self, path: str, content: bytes, branch: str, message: str) -> str:
        """Create or update `path` on `branch` (its current sha is sent when it exists; unchanged content is not
        committed again); returns the file's page on GitHub."""
        url = f"/repos/{self.repo}/contents/{quote(path)}"
        current = self.call("GET", f"{url}?ref={quote(branch)}", what=f"reading {path} on {branch}", allow=(404,))
        sha = current.data.get("sha") if current.status == 200 and isinstance(current.data, dict) else None
        if sha == blob_sha(content):
            return current.data["html_url"]
        body = {"message": message, "content": base64.b64encode(content).decode(), "branch": branch, **({"sha": sha} if sha else {})}
        return self.call("PUT", url, body, need="contents", what=f"storing {path} on {branch}").data["content"]["html_url"]
