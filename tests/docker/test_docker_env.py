"""Stage C1 (validators/docker_env.py): the report's facts, what is missing, and when the stage fails.

The unit tests drive `write` with a scripted runner (each machine state exactly); the `docker` test
probes the real engine that .ci/run installs and starts.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from validators.docker.engine import INSTALL, REPORT, write
from validators.frontmatter import split
from validators.project import Project

FULL = {
    ("docker", "version", "--format", "{{.Client.Version}}"): (0, "20.10.24+dfsg1"),
    ("docker", "version", "--format", "{{.Server.Version}}"): (0, "20.10.24+dfsg1"),
    ("docker", "compose", "version", "--short"): (1, ""),
    ("docker-compose", "version", "--short"): (0, "1.29.2"),
    ("docker", "info", "--format", "{{json .Runtimes}}"): (0, '{"io.containerd.runc.v2": {}, "runc": {}}'),
    ("docker", "buildx", "version"): (0, "github.com/docker/buildx v0.17.1 257815a"),
}


def runner(table: dict[tuple[str, ...], tuple[int, str]]):
    return lambda argv: table.get(tuple(argv), (127, ""))


def project(tmp_path: Path, accelerator: str = "cpu") -> Project:
    (tmp_path / ".copier-answers.yml").write_text(f"project_name: demo_project\naccelerator: {accelerator}\n")
    return Project(tmp_path)


def test_a_cpu_project_passes_without_gpu_passthrough_and_says_how_to_add_it(tmp_path):
    data = write(project(tmp_path), run=runner(FULL))
    assert {k: data[k] for k in ("variant", "docker_version", "docker_client_version", "compose_version", "compose_command",
                                 "runtimes", "gpu_passthrough", "buildkit_builder", "passed")} == {
        "variant": "cpu", "docker_version": "20.10.24+dfsg1", "docker_client_version": "20.10.24+dfsg1",
        "compose_version": "1.29.2", "compose_command": "docker-compose", "runtimes": ["io.containerd.runc.v2", "runc"],
        "gpu_passthrough": False, "buildkit_builder": "docker buildx build --load", "passed": True}
    assert data["missing"] == [{"item": "gpu_passthrough", "problem": "no `nvidia` runtime in `docker info`",
                                "required": False, "install": INSTALL["gpu_passthrough"]}]
    front, body = split((tmp_path / REPORT).read_text())
    assert front == data
    assert "| compose | 1.29.2 (docker-compose) |" in body and "**gpu_passthrough** (optional for the cpu image)" in body


def test_the_gpu_image_fails_without_the_nvidia_runtime(tmp_path):
    data = write(project(tmp_path, "gpu"), run=runner(FULL))
    assert (data["variant"], data["passed"], [g["required"] for g in data["missing"]]) == ("gpu", False, [True])


def test_the_gpu_image_passes_with_the_nvidia_runtime_and_compose_v2(tmp_path):
    table = {**FULL, ("docker", "compose", "version", "--short"): (0, "v2.29.1"),
             ("docker", "info", "--format", "{{json .Runtimes}}"): (0, '{"nvidia": {}, "runc": {}}')}
    data = write(project(tmp_path), variant="gpu", run=runner(table))
    assert (data["compose_version"], data["compose_command"], data["gpu_passthrough"], data["passed"], data["missing"]) == (
        "2.29.1", "docker compose", True, True, [])


def test_no_engine_fails_every_image_and_lists_each_missing_piece(tmp_path):
    table = {("docker", "version", "--format", "{{.Client.Version}}"): (1, "20.10.24+dfsg1\n"),
             ("docker", "version", "--format", "{{.Server.Version}}"): (1, "")}
    data = write(project(tmp_path), run=runner(table))
    assert (data["docker_version"], data["docker_client_version"], data["passed"]) == (None, "20.10.24+dfsg1", False)
    assert [(g["item"], g["required"]) for g in data["missing"]] == [
        ("docker_engine", True), ("compose", True), ("buildkit", True), ("gpu_passthrough", False)]
    assert "sudo apt-get install -y docker.io" in data["missing"][0]["install"]


@pytest.mark.e2e
@pytest.mark.docker
def test_the_real_engine_is_reported_with_its_versions(tmp_path):
    server = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True, check=True)
    data = write(project(tmp_path))
    assert data["docker_version"] == server.stdout.strip()
    assert data["compose_version"] and data["passed"] is True
