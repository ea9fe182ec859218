"""The hub through huggingface_hub: resolve a revision, list a repository, download one file, check it; every failure
one HubError that says what to do.

    hub = Hub()                                              # HF_ENDPOINT, HF_TOKEN from the environment, online
    commit = hub.resolve("microsoft/resnet-18", "main")      # the commit the revision points at
    files = hub.tree("microsoft/resnet-18", commit)          # [RemoteFile(path, size, blob_id, sha256)]
    path, record = hub.download("microsoft/resnet-18", commit, files[0], staging)   # checked against the listing

huggingface_hub reads HF_HUB_OFFLINE once, when it is imported; the generated project's package sets it to 1 on
import. So a Hub must be made in a process that has not imported huggingface_hub yet (the validators CLI imports
neither it nor the project): it sets HF_HUB_OFFLINE=0 first, since a fetch is the one step meant to go online.
Each file is fetched with hf_hub_download(local_dir=...), one at a time, so that progress is reported per file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import DependencyError, HubError
from ..weights import FileRecord, public_endpoint

INSTALL = "it is pinned in requirements-runtime (huggingface-hub==2.4.0): nox -s setup installs it"


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    blob_id: str        # git's blob sha1 (of the LFS pointer for an LFS file)
    sha256: str | None  # LFS files: the sha256 of the content, as the hub lists it


def digests(path: Path) -> tuple[str, str]:
    """(sha256, git's blob sha1) of a file, read once."""
    sha256, sha1 = hashlib.sha256(), hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(2**20), b""):
            sha256.update(chunk)
            sha1.update(chunk)
    return sha256.hexdigest(), sha1.hexdigest()


def go_online(report: Callable[[str], None]) -> None:
    """HF_HUB_OFFLINE=0 for this process, before huggingface_hub is imported (it reads the variable once)."""
    if "huggingface_hub" in sys.modules:
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE:
            raise HubError("huggingface_hub was imported in offline mode in this process (HF_HUB_OFFLINE=1)",
                           "fetch in a process of its own: nox -s fetch_weights (or python -m validators fetch-weights)")
        return
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        report("note: HF_HUB_OFFLINE=1 in this environment does not apply to the fetch, the one step that goes online")
    os.environ["HF_HUB_OFFLINE"] = "0"


class Hub:
    def __init__(self, report: Callable[[str], None] = print):
        go_online(report)
        try:
            from huggingface_hub import HfApi, constants, get_token
            from huggingface_hub.utils import disable_progress_bars
        except ImportError as err:
            raise DependencyError("huggingface_hub", "fetching from the Hugging Face hub", INSTALL) from err
        disable_progress_bars()  # one line per file instead (models.py)
        self.endpoint = public_endpoint(constants.ENDPOINT)
        self.has_token = bool(get_token())
        self.api = HfApi()

    @contextlib.contextmanager
    def asking(self, repo: str, what: str) -> Iterator[None]:
        """huggingface_hub's and the transport's errors as one HubError naming the repository and what to do."""
        import httpx2  # huggingface_hub's transport (a dependency of huggingface-hub 2.4)
        from huggingface_hub import errors as hf

        try:
            yield
        except hf.GatedRepoError as err:
            raise HubError(f"{repo} is gated: {self.endpoint} refused {what} ({status(err)})",
                           "accept the repository's terms on its hub page, then set HF_TOKEN to a token of that account"
                           if not self.has_token else "your token's account has not been granted access: accept the "
                           "repository's terms on its hub page with that account") from None
        except hf.RevisionNotFoundError as err:
            raise HubError(f"{repo}: no such revision at {self.endpoint} ({status(err)})",
                           "set an existing branch, tag or commit hash in configs/hub.yaml") from None
        except hf.RepositoryNotFoundError as err:
            raise HubError(f"{repo}: no such repository at {self.endpoint} ({status(err)})",
                           "check the repo in configs/hub.yaml and HF_ENDPOINT; a private repository also needs HF_TOKEN") from None
        except hf.RemoteEntryNotFoundError as err:
            raise HubError(f"{repo}: {what}: no such file ({status(err)})",
                           "the repository changed while it was fetched: run the fetch again") from None
        except hf.HfHubHTTPError as err:
            code = err.response.status_code if err.response is not None else 0
            if code == 401:
                raise HubError(f"{self.endpoint} refused HF_TOKEN for {what} of {repo} ({status(err)})",
                               "set HF_TOKEN to a valid access token, or unset it for a public repository") from None
            raise HubError(f"{self.endpoint} failed {what} of {repo} ({status(err)})",
                           "the hub or the mirror is failing: try again later" if code >= 500 else
                           "check HF_ENDPOINT: it must be the hub or a hub mirror") from None
        except (OSError, httpx2.TransportError) as err:  # connect/timeout errors, LocalEntryNotFoundError after them
            cause = err.__cause__ or err
            raise HubError(f"cannot reach {self.endpoint} for {what} of {repo} ({type(cause).__name__}: "
                           f"{str(cause).splitlines()[0] if str(cause) else 'no answer'})",
                           "fetch where there is internet, or set HF_ENDPOINT to a reachable hub mirror") from None

    def resolve(self, repo: str, revision: str, repo_type: str = "model") -> str:
        """The commit `revision` (a branch, tag or commit) points at."""
        with self.asking(repo, f"revision {revision!r}"):
            info = self.api.repo_info(repo, revision=revision, repo_type=repo_type)
        if not info.sha:
            raise HubError(f"{self.endpoint} named no commit for {repo}@{revision}", "check HF_ENDPOINT: it must be a hub")
        return info.sha

    def tree(self, repo: str, commit: str, repo_type: str = "model") -> list[RemoteFile]:
        """Every file of the repository at `commit`, with what the hub says its content is."""
        from huggingface_hub.hf_api import RepoFile

        with self.asking(repo, "the file listing"):
            listed = list(self.api.list_repo_tree(repo, recursive=True, revision=commit, repo_type=repo_type))
        return sorted((RemoteFile(f.path, f.size, f.blob_id, f.lfs.sha256 if f.lfs else None) for f in listed
                       if isinstance(f, RepoFile)), key=lambda f: f.path)

    def download(self, repo: str, commit: str, file: RemoteFile, into: Path, repo_type: str = "model") -> tuple[Path, FileRecord]:
        """`file` into `into`/<its path>, checked against the listing (the LFS sha256, or git's blob id); its record."""
        from huggingface_hub import hf_hub_download

        with self.asking(repo, file.path):
            path = Path(hf_hub_download(repo, file.path, revision=commit, repo_type=repo_type, local_dir=into))
        sha256, blob_id = digests(path)
        found, expected = (sha256, file.sha256) if file.sha256 is not None else (blob_id, file.blob_id)
        size = path.stat().st_size
        if found != expected or size != file.size:
            raise HubError(f"{repo}@{commit[:12]}: {file.path} arrived as {size} bytes with hash {found[:12]}, the hub lists "
                           f"{file.size} bytes with {expected[:12]}", "run the fetch again; if it persists, the mirror "
                           "HF_ENDPOINT names serves another file")
        return path, FileRecord(sha256, size)


def status(err: Exception) -> str:
    """'HTTP 404 RepoNotFound: Repository not found' from a huggingface_hub HTTP error."""
    response = getattr(err, "response", None)
    if response is None:
        return type(err).__name__
    headers = response.headers
    code, message = headers.get("X-Error-Code"), headers.get("X-Error-Message")
    return f"HTTP {response.status_code}" + (f" {code}" if code else "") + (f": {message}" if message else "")
