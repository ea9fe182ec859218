"""Stage C1: is the Docker engine ready for this project's image? Writes docker_env_report.md.

    python -m validators docker-env [--variant cpu|gpu]    # default: the project's `accelerator` answer

Probes the engine (`docker version`), Compose (`docker compose`, else `docker-compose`) and GPU
passthrough (an `nvidia` runtime in `docker info`). The report lists every missing piece with how to
install it; the stage fails only when the chosen image needs that piece (the GPU image needs GPU
passthrough, every image needs the engine and Compose).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..artifacts import DOCKER_ENV
from ..errors import DockerError
from ..frontmatter import join
from ..project import Project

REPORT = DOCKER_ENV.path
Runner = Callable[[list[str]], tuple[int, str]]  # argv -> (exit code, stdout); 127 when the program is missing

INSTALL = {
    "docker_engine": "Debian/Ubuntu: `sudo apt-get install -y docker.io`, then `sudo systemctl start docker` "
                     "(without systemd: `sudo dockerd &`); elsewhere see https://docs.docker.com/engine/install/",
    "compose": "Debian/Ubuntu: `sudo apt-get install -y docker-compose` (Compose v1), or the `docker-compose-plugin` "
               "package from Docker's apt repository (Compose v2, `docker compose`)",
    "buildkit": "install buildx: `docker-buildx-plugin` from Docker's apt repository, or the release binary as "
                "~/.docker/cli-plugins/docker-buildx (https://github.com/docker/buildx#installing)",
    "gpu_passthrough": "install the NVIDIA driver and the NVIDIA Container Toolkit "
                       "(https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html), "
                       "then `sudo nvidia-ctk runtime configure --runtime=docker` and restart the engine",
}


def run_command(argv: list[str]) -> tuple[int, str]:
    """The real runner: (exit code, stripped stdout), 127 when the program is not installed."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        return 127, ""
    except subprocess.TimeoutExpired:
        return 124, ""
    return proc.returncode, proc.stdout.strip()


def docker_clients() -> list[str]:
    """Every `docker` executable on PATH, first one first, each real file once."""
    seen, found = set(), []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        exe = Path(folder) / "docker"
        if exe.is_file() and os.access(exe, os.X_OK) and exe.resolve() not in seen:
            seen.add(exe.resolve())
            found.append(str(exe))
    return found


def build_command(run: Runner = run_command) -> tuple[list[str], dict[str, str]]:
    """(argv prefix, env) of a BuildKit build (the Dockerfiles bind-mount the wheelhouse with RUN --mount).

    Docker 23+ clients build with the buildx plugin; 20.10-22.x clients have BuildKit built in
    (DOCKER_BUILDKIT=1). A newer client without buildx cannot, so an older client later on PATH is used.
    """
    if run(["docker", "buildx", "version"])[0] == 0:
        return ["docker", "buildx", "build", "--load"], {}
    for exe in docker_clients():
        code, out = run([exe, "version", "--format", "{{.Client.Version}}"])
        major = out.split(".")[0] if out else ""
        if code in (0, 1) and major.isdigit() and int(major) < 23:
            return [exe, "build"], {"DOCKER_BUILDKIT": "1"}
    raise DockerError("no docker client here can run a BuildKit build: Docker 23+ needs the buildx plugin",
                      "install buildx (`docker-buildx-plugin` from Docker's apt repository, or the binary in "
                      "~/.docker/cli-plugins/docker-buildx)")


def find_compose(run: Runner = run_command) -> tuple[list[str], str] | None:
    """(command, version) of Compose: `docker compose` (v2) first, else `docker-compose` (v1); None if neither answers."""
    for argv in (["docker", "compose", "version", "--short"], ["docker-compose", "version", "--short"]):
        code, out = run(argv)
        if code == 0 and out:
            return argv[:-2], out.splitlines()[0].lstrip("v")
    return None


def probe(run: Runner = run_command) -> dict[str, Any]:
    """What this machine has: engine (server) and client versions, Compose, GPU passthrough."""
    code, client = run(["docker", "version", "--format", "{{.Client.Version}}"])
    client_version = client.splitlines()[0] if client and code in (0, 1) else None
    code, server = run(["docker", "version", "--format", "{{.Server.Version}}"])
    docker_version = server if code == 0 and server else None
    compose = find_compose(run)
    compose_command, compose_version = (" ".join(compose[0]), compose[1]) if compose else (None, None)
    runtimes: list[str] = []
    if docker_version:
        code, out = run(["docker", "info", "--format", "{{json .Runtimes}}"])
        if code == 0 and out:
            runtimes = sorted(json.loads(out))
    try:
        builder = " ".join(build_command(run)[0])
    except DockerError:
        builder = None
    return {"docker_version": docker_version, "docker_client_version": client_version,
            "compose_version": compose_version, "compose_command": compose_command,
            "runtimes": runtimes, "gpu_passthrough": "nvidia" in runtimes, "buildkit_builder": builder}


def missing(facts: dict[str, Any], variant: str) -> list[dict[str, Any]]:
    """Each absent piece: what it is, whether the `variant` image needs it, and how to install it."""
    absent = []
    if not facts["docker_version"]:
        absent.append(("docker_engine", "no running Docker engine (`docker version` reports no server)"))
    if not facts["compose_version"]:
        absent.append(("compose", "neither `docker compose` nor `docker-compose` answers"))
    if not facts["buildkit_builder"]:
        absent.append(("buildkit", "no client can run a BuildKit build (the Dockerfiles use RUN --mount): Docker 23+ "
                                   "needs the buildx plugin"))
    if not facts["gpu_passthrough"]:
        absent.append(("gpu_passthrough", "no `nvidia` runtime in `docker info`"))
    return [{"item": item, "problem": problem, "required": item != "gpu_passthrough" or variant == "gpu",
             "install": INSTALL[item]} for item, problem in absent]


def write(project: Project, variant: str | None = None, run: Runner = run_command) -> dict[str, Any]:
    """Probe, write docker_env_report.md, return its front matter (`passed` is False when a required piece is missing)."""
    variant = variant or str(project.answers.get("accelerator", "cpu"))
    facts = probe(run)
    gaps = missing(facts, variant)
    data = {"stage": "C1", "variant": variant, "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **facts, "passed": not any(g["required"] for g in gaps), "missing": gaps}
    rows = [f"| engine | {facts['docker_version'] or 'missing'} |", f"| client | {facts['docker_client_version'] or 'missing'} |",
            f"| compose | {facts['compose_version'] or 'missing'} ({facts['compose_command'] or '-'}) |",
            f"| BuildKit builder | {facts['buildkit_builder'] or 'missing'} |",
            f"| GPU passthrough | {'yes' if facts['gpu_passthrough'] else 'no'} (runtimes: {', '.join(facts['runtimes']) or '-'}) |"]
    todo = [f"- **{g['item']}** ({'required' if g['required'] else 'optional'} for the {variant} image): {g['problem']}. "
            f"Install: {g['install']}" for g in gaps]
    body = (f"# Docker environment (C1)\n\nImage variant: **{variant}**. Result: **{'pass' if data['passed'] else 'FAIL'}**.\n\n"
            "| piece | found |\n|---|---|\n" + "\n".join(rows) + "\n\n## Missing\n\n" + ("\n".join(todo) or "Nothing.") + "\n")
    project.write_text(REPORT, join(data, body))
    return data
