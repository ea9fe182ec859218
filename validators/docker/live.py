"""What `nox -s docker` cannot see in files: the engine, the images, the running service.

The docker chain (validators/chain.py, DOCKER) counts a step as done when its record matches its
inputs, its output files exist and its probe here finds its result still there:

    engine_down()                      docker_env: the engine answers
    base_not_needed(base)              docker_base is skipped: BASE_IMAGE is set, or the base image is there
    image_gone(tag)                    docker_build: the image exists
    checked_other_image(root, tag)     container_check: reports/container_env_check.log is of that image
    service_down(root, tag)            deploy: the reported container runs that image and /health answers 200

Each returns '' when all is well, else why not (one line for the chain's log). Standard library only:
the noxfile calls them in nox's own interpreter, before the project venv exists.
"""

from __future__ import annotations

import os
import re
import subprocess
import urllib.request
from pathlib import Path

from ..artifacts import CONTAINER_CHECK, DEPLOY_REPORT


def docker(*args: str) -> tuple[int, str]:
    """`docker ARGS`: (exit code, stripped stdout); 127 when there is no docker client, 124 after 60 s."""
    try:
        proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        return 127, ""
    except subprocess.TimeoutExpired:
        return 124, ""
    return proc.returncode, proc.stdout.strip()


def image_id(tag: str) -> str:
    """The image's ID (sha256:...), or '' when there is no such image."""
    code, out = docker("image", "inspect", "--format", "{{.Id}}", tag)
    return out if code == 0 else ""


def fields(path: Path) -> dict[str, str]:
    """The top-level `key: value` lines of a YAML file or of a Markdown file's front matter, values unquoted."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    if text.startswith("---\n"):
        text = text[4:].split("\n---\n", 1)[0]
    return {m.group(1): m.group(2).strip().strip("'\"") for m in re.finditer(r"^(\w+): *(\S.*)$", text, re.MULTILINE)}


def engine_down() -> str:
    code, out = docker("version", "--format", "{{.Server.Version}}")
    return "" if code == 0 and out else "the Docker engine does not answer (`docker version` shows no server)"


def base_not_needed(base: str) -> str:
    if os.environ.get("BASE_IMAGE"):
        return f"BASE_IMAGE={os.environ['BASE_IMAGE']} is set: docker_build builds on it"
    if image_id(base):
        return f"{base} is there (`nox -s docker_base -- --force` rebuilds it)"
    return ""


def image_gone(tag: str) -> str:
    return "" if image_id(tag) else f"image {tag} is gone"


def checked_other_image(root: Path, tag: str) -> str:
    current = image_id(tag)
    if not current:
        return f"image {tag} is gone"
    if fields(root / CONTAINER_CHECK.path).get("image_id") != current:
        return f"{CONTAINER_CHECK.path} is of another build of {tag}"
    return ""


def service_down(root: Path, tag: str, timeout: float = 5) -> str:
    report = fields(root / DEPLOY_REPORT.path)
    container, url = report.get("container", ""), report.get("url", "")
    if not container or not url:
        return f"{DEPLOY_REPORT.path} names no container and url"
    code, out = docker("inspect", "--format", "{{.State.Status}} {{.Image}} "
                       "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}", container)
    if code != 0 or len(out.split()) != 3:
        return f"the deployed container {container} is gone"
    status, image, health = out.split()
    if status != "running" or health == "unhealthy":
        return f"the deployed container {container} is {status if status != 'running' else 'unhealthy'}"
    if image != image_id(tag):
        return f"the service runs another build than {tag}"
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:  # noqa: S310 - the report's own URL
            answer = response.status
    except OSError as err:  # URLError, HTTPError (a non-2xx answer), a refused connection, a timeout
        return f"{url}/health does not answer 200 ({getattr(err, 'code', None) or getattr(err, 'reason', err)})"
    return "" if answer == 200 else f"{url}/health answered {answer}"
