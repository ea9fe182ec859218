"""Stage D6: the results of one run as one comment on a pull request, updated in place on every call.

    action, url = publish(GitHub.from_env(os.environ), 12, results, folder)   # ("created" | "updated", comment URL)

Order, so that a failure leaves no partial comment: the caller has checked that the pull request exists
(`gh.pull(pr)`: the command does it before any other work), then the PNGs are
stored (GitHub does not render images inlined as base64, so they go into the repository through the
contents API, on the branch `hephaestus-results` by default, at the project's own path
reports/results/<run>/; unchanged images are not committed again) and only then is the comment written,
in one request. The comment starts with a hidden marker, `<!-- hephaestus-results:<run> -->`: a later
call for the same run finds it through every page of comments and updates it instead of adding one.
`images=False` stores nothing: the comment says where the PNGs are instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..artifacts import RESULTS
from .github import GitHub
from .summary import markdown, marker

BRANCH = "hephaestus-results"
LIMIT = 65536  # GitHub refuses a comment body longer than this


def upload(gh: GitHub, results: dict[str, Any], folder: Path, branch: str) -> dict[str, str]:
    """Store every figure on `branch`; {file: the URL that renders it (the blob page with ?raw=true)}."""
    gh.ensure_branch(branch)
    links = {}
    for name in results["figures"]:
        page = gh.put_file(f"{RESULTS.path}/{results['run']}/{name}", (folder / name).read_bytes(), branch,
                           f"D6: curves of run {results['run']} ({name})")
        links[name] = f"{page}?raw=true"
    return links


def publish(gh: GitHub, pr: int, results: dict[str, Any], folder: Path, *, images: bool = True,
            branch: str = BRANCH) -> tuple[str, str]:
    """Create or update this run's comment on pull request `pr` (checked to exist); (action, the comment's URL)."""
    links = upload(gh, results, folder, branch) if images else None
    mark = marker(results["run"])
    body = markdown(results, links, marker=mark, limit=LIMIT)
    old = gh.find_comment(pr, mark)
    if old is not None:
        return "updated", gh.update_comment(old["id"], body).get("html_url", "")
    return "created", gh.create_comment(pr, body).get("html_url", "")
