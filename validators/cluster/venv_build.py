"""Stage D2: build the project's `.venv` for cluster jobs: relocatable, packages copied, no cache left behind,
the project installed non-editable, and made in the job's base image so its interpreter exists on the node.

    python -m validators cluster-venv [--image IMAGE] [--env debug-cpu|debug-gpu] [--force]
    nox -s cluster_venv -- --image local/bookworm-python:base      # the same, from the project's debug venv

Nothing is built while the configured pretrained model's weights fail their check (gate D2's weights rule: every
file of weights/<model>/ with the sha256 weights/manifest.yaml records). One line per phase, and uv's own output:
  1. uv: the uv binary itself (asked from uv, so a shim such as pyenv's is resolved: it is mounted into the image);
  2. wheel: the project copied to a temporary folder outside it and built into a wheel there (no build/ or
     *.egg-info lands in the project);
  3. venv: `uv venv --relocatable --python X.Y .venv`;
  4. install: `uv pip install --link-mode=copy --compile-bytecode -r requirements-<cpu|gpu>.txt`, from the local
     wheel folders or PyPI (and PyTorch's CPU index): pins.uv_sources, as `nox -s setup` installs;
  5. project: the wheel, `--no-deps`, from the temporary folder as a find-links source (so uv writes no
     direct_url.json naming it);
  6. record: BUILD_RECORD in the .venv (interpreter, Python, image, requirement file and its sha256, uv, time,
     size), then the D2 check (venv_check.py) on the result.
uv's cache (UV_CACHE_DIR) is in the temporary folder, deleted at the end.

With an image (--image, default $CLUSTER_IMAGE), phases 3-5 run in `docker run --rm` of it: the project mounted
read-only at its own absolute path and .venv writable, uv and the wheel folders read-only, as the invoking
uid:gid, so the files are the user's and bin/python links to the image's interpreter. The container reaches the
index over Docker's default network with the host's CA bundle (for TLS-inspecting proxies) and proxy variables;
with UV_OFFLINE=1 it runs with `--network=none` and every wheel must be in the wheel folder.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..artifacts import CLUSTER_VENV, SKIP_ANYWHERE, SKIP_AT_ROOT
from ..errors import ClusterError
from ..pins import ENVIRONMENTS, find_links, uv_sources
from ..project import Project
from .venv_check import (
    BUILD_RECORD,
    build_record,
    interpreter,
    nodes_need,
    pyvenv_cfg,
    rule_cluster_venv,
    sha256,
    venv_dir,
)
from .weights_gate import rule_pretrained_weights

UV_IN_IMAGE = "/opt/hephaestus/uv"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"  # Debian's, when SSL_CERT_FILE names none
PASSED_ON = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy", "all_proxy",
             "UV_INDEX", "UV_DEFAULT_INDEX", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_OFFLINE")


def default_env(project: Project) -> str:
    env = os.environ.get("PROJECT_ENV") or f"debug-{project.answers.get('accelerator', 'cpu')}"
    if env not in ENVIRONMENTS:
        raise ClusterError(f"PROJECT_ENV={env!r} is not an environment", f"expected one of {', '.join(ENVIRONMENTS)}")
    return env


def offline() -> bool:
    return os.environ.get("UV_OFFLINE", "").lower() in ("1", "true", "yes")


def run(argv: list[str], env: dict[str, str], what: str) -> None:
    """Run a build step with its output passed through (uv shows its own progress); ClusterError when it fails."""
    print("$ " + " ".join(argv), flush=True)
    try:
        code = subprocess.run(argv, env={**os.environ, **env}).returncode
    except FileNotFoundError as err:
        raise ClusterError(f"{what}: {argv[0]} is not installed ({err})", "install it, then run nox -s cluster_venv again") from err
    if code != 0:
        raise ClusterError(f"{what} failed (exit {code})", "the output above says why; a missing wheel means the wheel folder "
                           "(PIP_FIND_LINKS) or the index lacks it")


def uv_binary(cache: Path) -> tuple[str, str]:
    """(the uv executable itself, its version). uv sets $UV to its own path in what it runs."""
    found = shutil.which("uv")
    if not found:
        try:
            import uv  # type: ignore[import-not-found]

            found = uv.find_uv_bin()
        except (ImportError, FileNotFoundError) as err:
            raise ClusterError("uv is not installed", "`pip install uv` (it builds the .venv)") from err
    env = {**os.environ, "UV_CACHE_DIR": str(cache)}
    ask = [found, "run", "--no-project", "--python", sys.executable, "python", "-c", "import os; print(os.environ['UV'])"]
    done = subprocess.run(ask, env=env, capture_output=True, text=True)
    version = subprocess.run([found, "--version"], env=env, capture_output=True, text=True).stdout.split()
    if done.returncode != 0 or not done.stdout.strip() or len(version) < 2:
        raise ClusterError(f"{found} did not say where its binary is: {done.stderr.strip()[-300:]}", "set PATH to a uv >= 0.8")
    return done.stdout.strip(), version[1]


class Builder:
    """Runs uv on the host, or in `docker run` of the image with the project at its own path."""

    def __init__(self, root: Path, tmp: Path, uv: str, image: str | None, links: list[str]):
        self.tmp, self.uv, self.links = tmp, uv, links
        self.env = {"UV_CACHE_DIR": str(tmp / "cache")}
        self.prefix = [uv] if not image else [*self.docker(root, tmp, uv, links), image, UV_IN_IMAGE]

    @staticmethod
    def docker(root: Path, tmp: Path, uv: str, links: list[str]) -> list[str]:
        venv = root / CLUSTER_VENV.path
        argv = ["docker", "run", "--rm", "--user", f"{os.getuid()}:{os.getgid()}", "-w", str(root),
                "-v", f"{root}:{root}:ro", "-v", f"{venv}:{venv}", "-v", f"{tmp}:{tmp}", "-v", f"{uv}:{UV_IN_IMAGE}:ro"]
        argv += [arg for folder in links if folder.startswith("/") for arg in ("-v", f"{folder}:{folder}:ro")]
        argv += ["-e", f"HOME={tmp / 'home'}", "-e", f"UV_CACHE_DIR={tmp / 'cache'}", "-e", "UV_PYTHON_DOWNLOADS=never"]
        argv += [arg for var in PASSED_ON if var in os.environ for arg in ("-e", var)]
        if offline():
            return [*argv, "--network=none"]
        bundle = Path(os.environ.get("SSL_CERT_FILE") or CA_BUNDLE)
        if bundle.is_file():
            shutil.copyfile(bundle, tmp / "ca-bundle.pem")
            argv += ["-e", f"SSL_CERT_FILE={tmp / 'ca-bundle.pem'}"]
        return argv

    def uv_run(self, uv_args: list[str], what: str) -> None:
        run([*self.prefix, *uv_args], self.env, what)


def build_project_wheel(project: Project, builder: Builder, env: str) -> Path:
    """The project as a wheel, built from a copy in the temporary folder: setuptools writes build/ and
    *.egg-info next to the sources it builds, and none of that belongs in the project."""
    source = builder.tmp / "source"

    def ignore(folder: str, names: list[str]) -> set[str]:
        at_root = Path(folder) == project.root
        return {n for n in names if n in SKIP_ANYWHERE or at_root and n in SKIP_AT_ROOT}

    shutil.copytree(project.root, source, symlinks=True, ignore=ignore)
    dist = builder.tmp / "dist"
    run([builder.uv, "build", "--wheel", "--python", sys.executable, "--out-dir", str(dist), str(source),
         *uv_sources(env, builder.links)], builder.env, "building the project's wheel")
    wheels = sorted(dist.glob("*.whl"))
    if len(wheels) != 1:
        raise ClusterError(f"uv build made {len(wheels)} wheels of the project, not one", "check pyproject.toml's [project]")
    return wheels[0]


def folder_size(folder: Path) -> tuple[int, int]:
    """(bytes, files) of the regular files under `folder`; links are not followed."""
    size = count = 0
    for base, _, files in os.walk(folder):
        for name in files:
            st = os.lstat(os.path.join(base, name))
            if stat.S_ISREG(st.st_mode):
                size, count = size + st.st_size, count + 1
    return size, count


def up_to_date(project: Project, env: str, image: str | None) -> str:
    """'' when the .venv was built for this environment and image and passes the check; else why it is rebuilt."""
    record = build_record(venv_dir(project))
    if record is None:
        return "no build record" if venv_dir(project).exists() else "no .venv yet"
    if (record.get("env"), record.get("image")) != (env, image):
        return f"built for {record.get('env')} in {record.get('image') or 'the host'}, now {env} in {image or 'the host'}"
    if image and record.get("image_id") != image_id(image):
        return f"{image} changed since the build (its id is another)"
    errors = list(rule_cluster_venv(project))
    return f"{len(errors)} check error(s), the first: {errors[0]}" if errors else ""


def build(project: Project, env: str, image: str | None, force: bool = False) -> dict[str, Any]:
    """Build (or keep, when up to date and not forced) the .venv; its build record."""
    refused = list(rule_pretrained_weights(project))
    if refused:
        raise ClusterError("nothing was built: the configured pretrained model's weights are not as fetched (gate D2):\n"
                           + "\n".join(f"  {e}" for e in refused), "fetch them where there is internet and copy weights/ here")
    requirements = ENVIRONMENTS[env]
    if not (project.root / requirements).is_file():
        raise ClusterError(f"{requirements} is missing: the .venv of {env} is built from it", "copier update restores it")
    if image and not image_id(image):
        raise ClusterError(f"the image {image} is not on this machine", "`docker load` it, or `nox -s docker_base` for the "
                           "local base image; --image '' builds with the host's interpreter")
    venv = venv_dir(project)
    why = "--force" if force else up_to_date(project, env, image)
    if not why:
        record = build_record(venv) or {}
        print(f"{CLUSTER_VENV.path} is up to date ({env}, {image or 'host'} interpreter); kept (--force rebuilds it)")
        print(nodes_need(record))
        return record
    print(f"building {CLUSTER_VENV.path} ({why}): {env} from {requirements}, in {image or 'the host interpreter'}", flush=True)
    start = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="hephaestus-venv-")).resolve()
    try:
        if tmp.is_relative_to(project.root):
            raise ClusterError(f"the temporary folder {tmp} is inside the project", "set TMPDIR to a folder outside it")
        (tmp / "home").mkdir()
        print("[1/6] uv: the binary and its version", flush=True)
        uv, uv_version = uv_binary(tmp / "cache")
        links = find_links()
        builder = Builder(project.root, tmp, uv, image, links)
        print(f"      {uv} (uv {uv_version}); wheel folders: {', '.join(links) or 'none (PyPI)'}", flush=True)
        print("[2/6] wheel: the project, built outside it", flush=True)
        wheel = build_project_wheel(project, builder, env)
        if venv.exists() or venv.is_symlink():
            shutil.rmtree(venv)
        venv.mkdir()
        python = str(project.answers.get("python_version", f"{sys.version_info[0]}.{sys.version_info[1]}"))
        print(f"[3/6] venv: uv venv --relocatable, Python {python}", flush=True)
        builder.uv_run(["venv", "--relocatable", "--allow-existing", "--python", python, str(venv)], "uv venv")
        target = ["--python", str(venv / "bin" / "python"), "--link-mode=copy", "--compile-bytecode"]
        print(f"[4/6] install: {requirements}", flush=True)
        builder.uv_run(["pip", "install", *target, "-r", str(project.root / requirements), *uv_sources(env, links)],
                       f"installing {requirements}")
        name, version = wheel.name.split("-")[:2]
        print(f"[5/6] project: {wheel.name}, non-editable", flush=True)
        builder.uv_run(["pip", "install", *target, "--no-deps", "--no-index", "--find-links", str(wheel.parent),
                        f"{name}=={version}"], "installing the project")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"[6/6] record: {CLUSTER_VENV.path}/{BUILD_RECORD}, then the D2 check", flush=True)
    size, files = folder_size(venv)
    record = {"interpreter": interpreter(venv), "python": pyvenv_cfg(venv).get("version_info", ""), "image": image,
              "image_id": image_id(image) if image else None, "env": env, "requirements": requirements,
              "requirements_sha256": sha256(project.root / requirements), "project_wheel": wheel.name, "uv": uv_version,
              "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "build_seconds": round(time.monotonic() - start, 1),
              "build_root": str(project.root), "build_tmp": str(tmp), "find_links": links, "size_bytes": size, "files": files}
    (venv / BUILD_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    errors = list(rule_cluster_venv(project))
    if errors:
        raise ClusterError(f"the new {CLUSTER_VENV.path} fails the D2 check:\n" + "\n".join(map(str, errors)),
                           "a package wrote an absolute path: see the files named above")
    print(f"built {CLUSTER_VENV.path} in {record['build_seconds']}s: {size / 2**20:.0f} MiB ({size} bytes), {files} files")
    print(nodes_need(record))
    return record


def image_id(image: str) -> str | None:
    """The image's id, or None when this machine's Docker engine does not have it."""
    try:
        done = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", image], capture_output=True, text=True)
    except FileNotFoundError as err:
        raise ClusterError(f"--image {image}: docker is not installed", "install Docker, or build with the host's "
                           "interpreter: --image ''") from err
    return done.stdout.strip() or None
