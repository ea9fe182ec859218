"""Stage D2 without Docker: `cluster-venv` builds a real relocatable .venv on the host with uv, and the check
passes on it, also after a move; then each fault the check exists for is planted and reported exactly.

The project is tiny and everything is offline: one dependency (`probe_tool`, with a console script) and the
project itself, both packaged by an in-tree PEP 517 backend (BACKEND, no build requirements), the dependency's
wheel in a folder named by UV_FIND_LINKS, UV_OFFLINE=1. The .venv is built once per module; each test works on
a copy of the whole project at another path (a move).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from validators.__main__ import main
from validators.cluster.venv_build import Builder, build
from validators.cluster.venv_check import BUILD_RECORD, rule_cluster_venv, sha256
from validators.errors import ClusterError, GateError
from validators.project import Project

from ..helpers import TEMPLATE, write_file

BACKEND = '''"""A PEP 517 backend in 20 lines: src/<name>/*.py and [project.scripts] into a py3-none-any wheel."""
import base64, hashlib, pathlib, tomllib, zipfile


def _wheel(directory, editable):
    meta = tomllib.loads(pathlib.Path("pyproject.toml").read_text())["project"]
    name, version = meta["name"], meta["version"]
    info = f"{name}-{version}.dist-info"
    src = pathlib.Path("src").resolve()
    files = {f"_{name}.pth": f"{src}\\n".encode()} if editable else {
        p.relative_to(src).as_posix(): p.read_bytes() for p in src.rglob("*.py")}
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\n".encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\\nGenerator: probe\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    scripts = meta.get("scripts", {})
    if scripts:
        files[f"{info}/entry_points.txt"] = ("[console_scripts]\\n" + "".join(f"{k} = {v}\\n" for k, v in scripts.items())).encode()
    digest = lambda d: base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b"=").decode()
    record = "".join(f"{path},sha256={digest(data)},{len(data)}\\n" for path, data in files.items())
    files[f"{info}/RECORD"] = f"{record}{info}/RECORD,,\\n".encode()
    out = f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(pathlib.Path(directory) / out, "w") as whl:
        for path, data in files.items():
            whl.writestr(path, data)
    return out


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, editable=False)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, editable=True)
'''


def package(root: Path, name: str, code: str, scripts: str = "") -> Path:
    write_file(root / "pyproject.toml", f'[build-system]\nrequires = []\nbuild-backend = "probe_backend"\nbackend-path = ["."]\n\n'
                                        f'[project]\nname = "{name}"\nversion = "0.1"\nreadme = "README.md"\n{scripts}')
    write_file(root / "probe_backend.py", BACKEND)
    write_file(root / "README.md", f"# {name}\n")
    write_file(root / "src" / name / "__init__.py", code)
    return root


def uv(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(["uv", *args], cwd=cwd, check=True, capture_output=True, env={**os.environ, "UV_OFFLINE": "1"})


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    """A project whose .venv `cluster-venv` built on the host: (root, build record, the build's output)."""
    base = tmp_path_factory.mktemp("d2")
    tool = package(base / "probe_tool", "probe_tool",
                   "def main():\n    print('probe tool ran')\n", '\n[project.scripts]\nprobe-tool = "probe_tool:main"\n')
    uv("build", "--wheel", "--out-dir", str(base / "wheels"), str(tool))
    root = package(base / "build_place" / "probe_project", "probe_project", "VALUE = 42\n")
    write_file(root / ".copier-answers.yml", "python_version: '3.11'\naccelerator: cpu\nproject_name: probe_project\n")
    write_file(root / "requirements-cpu.txt", "probe_tool==0.1\n")
    env = {"UV_FIND_LINKS": str(base / "wheels"), "UV_OFFLINE": "1", "PIP_FIND_LINKS": "", "PROJECT_ENV": "", "CLUSTER_IMAGE": ""}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        command = [sys.executable, "-m", "validators", "--project", str(root), "cluster-venv"]
        done = subprocess.run(command, cwd=TEMPLATE, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        kept = subprocess.run(command, cwd=TEMPLATE, capture_output=True, text=True)
    assert kept.returncode == 0 and kept.stdout.startswith(".venv is up to date (debug-cpu, host interpreter); kept (--force rebuilds it)\n")
    return root, json.loads((root / ".venv" / BUILD_RECORD).read_text()), done.stdout


@pytest.fixture()
def moved(built: tuple[Path, dict, str], tmp_path: Path) -> Path:
    """The built project copied to another absolute path, as a move to shared storage does."""
    return Path(shutil.copytree(built[0], tmp_path / "elsewhere" / "probe_project", symlinks=True))


def errors(root: Path) -> list[str]:
    return [str(e) for e in rule_cluster_venv(Project(root))]


def test_the_build_runs_each_phase_and_records_what_it_built(built):
    root, record, out = built
    assert [line[:5] for line in out.splitlines() if line.startswith("[")] == [f"[{n}/6]" for n in range(1, 7)]
    python = os.readlink(root / ".venv/bin/python")
    assert out.splitlines()[-1] == f"nodes need {python} (Python 3.11): this host's interpreter, at this path on every node"
    assert record["interpreter"] == python and record["python"].startswith("3.11.") and record["image"] is None
    assert (record["env"], record["requirements"], record["project_wheel"]) == ("debug-cpu", "requirements-cpu.txt",
                                                                               "probe_project-0.1-py3-none-any.whl")
    assert record["requirements_sha256"] == sha256(root / "requirements-cpu.txt") and record["files"] > 10
    assert record["size_bytes"] == sum(p.stat().st_size for p in (root / ".venv").rglob("*") if p.is_file() and not p.is_symlink()
                                       and p.name != BUILD_RECORD)
    assert not Path(record["build_tmp"]).exists(), "the temporary folder (uv's cache) is deleted"
    assert sorted(p.name for p in root.iterdir()) == [".copier-answers.yml", ".venv", "README.md", "probe_backend.py",
                                                       "pyproject.toml", "requirements-cpu.txt", "src"]  # no cache, no build/
    assert not list((root / "src").rglob("*.egg-info")) and not list((root / "src").rglob("__pycache__"))


def test_the_venv_is_relocatable_non_editable_and_compiled(built):
    root = built[0]
    site = root / ".venv/lib/python3.11/site-packages"
    assert (root / ".venv/pyvenv.cfg").read_text().count("relocatable = true") == 1
    assert (root / ".venv/bin/probe-tool").read_text().startswith("#!/bin/sh\n'''exec' \"$(dirname -- \"$(realpath -- \"$0\")\")\"")
    assert (site / "probe_project/__init__.py").read_text() == "VALUE = 42\n" and not list(site.glob("*.pth"))
    assert not (site / "probe_project-0.1.dist-info/direct_url.json").exists()
    assert list((site / "probe_tool/__pycache__").glob("__init__.cpython-311.pyc"))


def test_after_a_move_the_check_passes_and_the_entry_point_runs(moved, capsys):
    assert errors(moved) == []
    assert subprocess.run([str(moved / ".venv/bin/probe-tool")], capture_output=True, text=True, check=True).stdout == "probe tool ran\n"
    assert main(["--project", str(moved), "venv-check"]) == 0
    python = os.readlink(moved / ".venv/bin/python")
    assert capsys.readouterr().out == (f"nodes need {python} (Python 3.11): this host's interpreter, at this path on every node\n"
                                       ".venv: relocatable, no path of the build, matches its requirement file\n")
    assert main(["--project", str(moved), "check", "--stages", "D2"]) == 0
    assert capsys.readouterr().out == "stages D2: all gates pass\n"


def test_an_absolute_pth_is_reported_exactly(moved, capsys):
    write_file(moved / ".venv/lib/python3.11/site-packages/planted.pth", "/data/shared/src\n")
    expected = (".venv/lib/python3.11/site-packages/planted.pth: line 1: '/data/shared/src' is invalid: expected a path relative "
                "to site-packages: an absolute .pth entry breaks when the project moves (hint: an editable install writes one: "
                "install the project non-editable (nox -s cluster_venv does))")
    assert errors(moved) == [expected]
    assert main(["--project", str(moved), "venv-check"]) == 1
    assert capsys.readouterr().out.splitlines()[1:] == [expected, ".venv: 1 error(s)"]


def test_a_build_path_in_a_script_or_a_source_file_is_reported(moved, built):
    old = built[0]
    script = moved / ".venv/bin/probe-tool"
    script.write_text(f"#!{old}/.venv/bin/python\nfrom probe_tool import main\nmain()\n")
    write_file(moved / ".venv/lib/python3.11/site-packages/probe_tool/where.py", f'import os\nDATA = "{moved}/data"\n')
    assert list(rule_cluster_venv(Project(moved))) == [  # GateErrors compare by file, path, value, expected, hint
        GateError(".venv/bin/probe-tool", "line 1", f"{old}/.venv/bin/python", "#!/bin/sh and uv's relocatable launcher: an "
                  "absolute interpreter breaks when the project moves",
                  "rebuild with nox -s cluster_venv (uv venv --relocatable rewrites the entry points)"),
        GateError(".venv/lib/python3.11/site-packages/probe_tool/where.py", "line 2", f"{moved}/data", "no path of the build (the "
                  "project's, uv's cache, the wheel folder): such a path breaks when the project moves",
                  "rebuild with nox -s cluster_venv; a package that writes its install path into a file needs a fix")]


def test_a_changed_requirement_file_is_drift(moved, built):
    with (moved / "requirements-cpu.txt").open("a") as f:
        f.write("numpy==2.4.6\n")
    assert errors(moved) == [
        f".venv/{BUILD_RECORD}: requirements_sha256: '{built[1]['requirements_sha256']}' is invalid: expected the sha256 of "
        f"requirements-cpu.txt now ({sha256(moved / 'requirements-cpu.txt')}) (hint: requirements-cpu.txt changed since the "
        ".venv was built: rebuild with nox -s cluster_venv)"]


def test_an_editable_install_of_the_project_is_caught(moved):
    uv("pip", "install", "--python", str(moved / ".venv/bin/python"), "--no-deps", "-e", str(moved))
    site = ".venv/lib/python3.11/site-packages"
    hint = "install the project non-editable (nox -s cluster_venv does)"
    assert list(rule_cluster_venv(Project(moved))) == [
        GateError(f"{site}/_probe_project.pth", "line 1", f"{moved}/src", "a path relative to site-packages: an absolute .pth "
                  "entry breaks when the project moves", f"an editable install writes one: {hint}"),
        GateError(f"{site}/probe_project-0.1.dist-info/direct_url.json", "dir_info.editable", f"file://{moved}",
                  "a non-editable install: an editable one breaks when the project moves", hint)]


def test_a_venv_made_without_relocatable_is_reported(moved):
    cfg = moved / ".venv/pyvenv.cfg"
    cfg.write_text(cfg.read_text().replace("relocatable = true\n", ""))
    assert errors(moved) == [".venv/pyvenv.cfg: relocatable: missing: expected true: a venv made by `uv venv --relocatable` "
                             "(hint: rebuild with nox -s cluster_venv)"]


def test_the_interpreter_link_is_checked_here_only_for_a_host_build(moved, capsys):
    link = moved / ".venv/bin/python"
    link.unlink()
    link.symlink_to("/opt/nowhere/python3.11")
    assert errors(moved) == [".venv/bin/python: link: '/opt/nowhere/python3.11' is invalid: expected the interpreter it was built "
                             "with, present (hint: that Python was removed, or the .venv was built on another machine: rebuild "
                             "with nox -s cluster_venv)"]
    record_path = moved / ".venv" / BUILD_RECORD
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps({**record, "image": "registry.example/train:1.0", "interpreter": "/opt/nowhere/python3.11"}))
    assert errors(moved) == []
    assert main(["--project", str(moved), "venv-check"]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == [
        "nodes need /opt/nowhere/python3.11 (Python 3.11): the interpreter of the image registry.example/train:1.0",
        "info: /opt/nowhere/python3.11 is not on this machine: the .venv runs in registry.example/train:1.0 (or a node with "
        "that Python)"]


def test_a_link_out_of_the_venv_is_reported(moved):
    (moved / ".venv/lib/python3.11/site-packages/cached").symlink_to("/root/.cache/uv/archive-v0/abc")
    assert errors(moved) == [".venv/lib/python3.11/site-packages/cached: link: '/root/.cache/uv/archive-v0/abc' is invalid: "
                             "expected a link inside the .venv (only bin/python points to the interpreter): an absolute one "
                             "breaks when the project moves (hint: rebuild with nox -s cluster_venv)"]


def test_no_venv_and_no_build_record(tmp_path):
    assert errors(tmp_path) == [".venv: <root>: missing: expected the relocatable venv the cluster jobs run (nox -s cluster_venv) "
                                "(hint: build it: nox -s cluster_venv)"]
    write_file(tmp_path / ".venv/pyvenv.cfg", "home = /usr/bin\nrelocatable = true\n")
    assert errors(tmp_path) == [f".venv/{BUILD_RECORD}: <root>: missing: expected the build record of the .venv (interpreter, "
                                "requirement file and its sha256) (hint: a .venv made by hand has none: rebuild with "
                                "nox -s cluster_venv)"]


def test_a_build_in_a_missing_image_stops_before_touching_the_venv(built, tmp_path):
    root = Path(shutil.copytree(built[0], tmp_path / "p", symlinks=True))
    before = sorted(p.name for p in (root / ".venv").iterdir())
    with pytest.raises(ClusterError, match=r"the image local/none:missing is not on this machine"):
        build(Project(root), "debug-cpu", "local/none:missing")
    assert sorted(p.name for p in (root / ".venv").iterdir()) == before


def test_the_build_container_mounts_the_project_at_its_path_and_is_offline_with_uv_offline(tmp_path, monkeypatch):
    root, tmp = tmp_path / "project", tmp_path / "build"
    tmp.mkdir()
    bundle = write_file(tmp_path / "ca.pem", "-----BEGIN CERTIFICATE-----\n")
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "UV_INDEX_URL", "UV_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    common = ["docker", "run", "--rm", "--user", f"{os.getuid()}:{os.getgid()}", "-w", str(root),
              "-v", f"{root}:{root}:ro", "-v", f"{root}/.venv:{root}/.venv", "-v", f"{tmp}:{tmp}", "-v", "/bin/uv:/opt/hephaestus/uv:ro",
              "-v", "/opt/wheels:/opt/wheels:ro", "-e", f"HOME={tmp}/home", "-e", f"UV_CACHE_DIR={tmp}/cache",
              "-e", "UV_PYTHON_DOWNLOADS=never", "-e", "HTTPS_PROXY"]
    online = Builder(root, tmp, "/bin/uv", "img:1", ["/opt/wheels", "https://wheels.example/simple"]).prefix
    assert online == [*common, "-e", f"SSL_CERT_FILE={tmp}/ca-bundle.pem", "img:1", "/opt/hephaestus/uv"]
    assert (tmp / "ca-bundle.pem").read_text() == bundle.read_text()
    monkeypatch.setenv("UV_OFFLINE", "1")
    offline = Builder(root, tmp, "/bin/uv", "img:1", ["/opt/wheels"]).prefix
    assert offline == [*common, "-e", "UV_OFFLINE", "--network=none", "img:1", "/opt/hephaestus/uv"]
    assert Builder(root, tmp, "/bin/uv", None, []).prefix == ["/bin/uv"]
