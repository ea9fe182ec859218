"""Stage D2's gate: the job's `.venv` still works after the project moves, and matches its requirement file.

    python -m validators venv-check          # "nodes need /usr/bin/python3.11 (Python 3.11)", then every error
    python -m validators check --stages D2   # the same errors as a gate (a job is submitted only when it passes)
    errors = list(rule_cluster_venv(project))

A compute node runs the `.venv` from shared storage, at another absolute path than the one it was built
at, with no network. So the check reports:
- in the files that make up the venv (pyvenv.cfg, *.pth, RECORD, direct_url.json, the shebangs of bin/,
  symbolic links), every absolute path but the interpreter's: pyvenv.cfg's `home` and the bin/python link;
- in every other readable file, the build's own locations: the project's path at build time and now, the
  build's temporary folder (uv's cache) and the local wheel folders. Compiled files (.pyc, .so) are not
  read, so a torch venv (~40k files) is checked in seconds. A .pyc does hold its source's path at build
  time (co_filename), but the import system replaces it with the path it loads the module from;
- a requirement file that changed since the build: its sha256 is in the build record (BUILD_RECORD);
- no `.venv`, or no build record.
The interpreter link pointing nowhere on this machine is an error only for a `.venv` built with the host's
interpreter: one built in an image points into the image, and `venv-check` says so.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..artifacts import CLUSTER_VENV
from ..errors import GateError
from ..project import Project

BUILD_RECORD = "hephaestus-venv.json"  # inside the .venv: what `cluster-venv` built, and from what
REBUILD = f"rebuild with {CLUSTER_VENV.by}"
SHEBANGS = frozenset({"/bin/sh", "/bin/bash", "/usr/bin/env"})  # every node has them; uv's relocatable launcher uses /bin/sh
# Not read at all: compiled code and archives, most of a torch venv's bytes. Other binaries (a NUL in the first
# 8 KiB) are only searched for the build's paths.
COMPILED = frozenset({".pyc", ".so", ".a", ".o", ".pyd", ".dll", ".dylib", ".exe", ".whl", ".zip", ".gz", ".bz2", ".xz",
                      ".npy", ".npz", ".pt", ".pkl"})
MAX_READ = 32 * 2**20  # larger files are data, not configuration
PATH_TAIL = rb"(?:/[^\s'\"`;,()<>|\\]*)?(?![\w.+-])"  # the rest of a path after a root, up to a delimiter
QUOTED_ABSOLUTE = re.compile(r"""['"](/[^'"]+)['"]""")
MOVES = "breaks when the project moves"


def venv_dir(project: Project) -> Path:
    return project.root / CLUSTER_VENV.path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_record(venv: Path) -> dict[str, Any] | None:
    """The build record `cluster-venv` wrote, or None when there is none (or it is not JSON)."""
    try:
        data = json.loads((venv / BUILD_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def pyvenv_pairs(text: str) -> list[tuple[str, str]]:
    return [(k.strip(), v.strip()) for k, sep, v in (ln.partition("=") for ln in text.splitlines()) if sep]


def pyvenv_cfg(venv: Path) -> dict[str, str]:
    try:
        return dict(pyvenv_pairs((venv / "pyvenv.cfg").read_text(encoding="utf-8")))
    except OSError:
        return {}


def interpreter(venv: Path) -> str:
    """Where bin/python points: the interpreter a node must have at exactly this path ('' when it is no link)."""
    link = venv / "bin" / "python"
    return os.readlink(link) if link.is_symlink() else ""


def nodes_need(record: dict[str, Any]) -> str:
    """The line the build and `venv-check` print: the interpreter path every node must have, and where it comes from."""
    version = ".".join(str(record.get("python", "?")).split(".")[:2])
    where = f"the interpreter of the image {record['image']}" if record.get("image") else "this host's interpreter, at this path on every node"
    return f"nodes need {record.get('interpreter', '?')} (Python {version}): {where}"


def rule_cluster_venv(project: Project) -> Iterator[GateError]:
    """Gate D2: every reason the .venv would not run on a node after the project moved, or no longer matches."""
    venv = venv_dir(project)
    if not venv.is_dir():
        yield GateError(CLUSTER_VENV.path, "", None, CLUSTER_VENV.what, f"build it: {CLUSTER_VENV.by}")
        return
    record = build_record(venv)
    if record is None:
        yield GateError(f"{CLUSTER_VENV.path}/{BUILD_RECORD}", "", None, "the build record of the .venv (interpreter, "
                        "requirement file and its sha256)", f"a .venv made by hand has none: {REBUILD}")
    else:
        yield from drift(project, record)
    yield from interpreter_errors(venv, record or {})
    yield from scan(project.root, venv, record or {})


def drift(project: Project, record: dict[str, Any]) -> Iterator[GateError]:
    where = f"{CLUSTER_VENV.path}/{BUILD_RECORD}"
    req = str(record.get("requirements", ""))
    path = project.root / req
    if not req or not path.is_file():
        yield GateError(where, "requirements", req or None, "the requirement file the .venv was built from, present",
                        f"restore it, or {REBUILD} -- --env debug-cpu|debug-gpu")
        return
    now = sha256(path)
    if record.get("requirements_sha256") != now:
        yield GateError(where, "requirements_sha256", record.get("requirements_sha256"), f"the sha256 of {req} now ({now})",
                        f"{req} changed since the .venv was built: {REBUILD}")


def interpreter_errors(venv: Path, record: dict[str, Any]) -> Iterator[GateError]:
    cfg = pyvenv_cfg(venv)
    if cfg.get("relocatable") != "true":
        yield GateError(f"{CLUSTER_VENV.path}/pyvenv.cfg", "relocatable", cfg.get("relocatable"),
                        "true: a venv made by `uv venv --relocatable`", REBUILD)
    target = interpreter(venv)
    if target and not Path(target).exists() and not record.get("image"):
        yield GateError(f"{CLUSTER_VENV.path}/bin/python", "link", target, "the interpreter it was built with, present",
                        f"that Python was removed, or the .venv was built on another machine: {REBUILD}")


def bad_roots(root: Path, record: dict[str, Any]) -> list[bytes]:
    """The build's own locations, which no file of the .venv may name: the project's paths, the build's
    temporary folder and the wheel folders (longest first, so a match names the most specific one)."""
    found = {str(root), str(record.get("build_root", "")), str(record.get("build_tmp", "")),
             *(str(f) for f in record.get("find_links", []))}
    return sorted({r.rstrip("/").encode() for r in found if r.startswith("/") and len(r.rstrip("/")) > 1}, key=len, reverse=True)


def scan(root: Path, venv: Path, record: dict[str, Any]) -> Iterator[GateError]:
    """Walk the .venv once: links, the venv's own files by their format, then the build's paths in any file."""
    roots = bad_roots(root, record)
    located = re.compile(b"(?:" + b"|".join(re.escape(r) for r in roots) + b")" + PATH_TAIL)
    for folder, dirs, files in os.walk(venv):
        dirs.sort()
        base = Path(folder)
        for name in [*dirs, *sorted(files)]:
            path = base / name
            rel = path.relative_to(venv).as_posix()
            shown = f"{CLUSTER_VENV.path}/{rel}"
            if path.is_symlink():
                yield from link_errors(venv, path, rel, shown)
                continue
            if name in dirs or rel == BUILD_RECORD or path.suffix in COMPILED or ".so." in name:
                continue
            try:
                if path.stat().st_size > MAX_READ:
                    continue
                data = path.read_bytes()
            except OSError:
                continue
            reported: set[int] = set()  # lines with an error already; 0: the whole file has one
            if b"\0" not in data[:8192]:
                for error in format_errors(rel, shown, name, data.decode("utf-8", "replace")):
                    reported.add(int(error.path.split()[-1]) if error.path.startswith("line ") else 0)
                    yield error
            if roots and 0 not in reported and any(r in data for r in roots):
                for match in located.finditer(data):
                    line = data.count(b"\n", 0, match.start()) + 1
                    if line not in reported:
                        reported.add(line)
                        yield GateError(shown, f"line {line}", match.group().decode("utf-8", "replace"),
                                        f"no path of the build (the project's, uv's cache, the wheel folder): such a path {MOVES}",
                                        f"{REBUILD}; a package that writes its install path into a file needs a fix")


def link_errors(venv: Path, path: Path, rel: str, shown: str) -> Iterator[GateError]:
    target = os.readlink(path)
    if os.path.isabs(target):
        if rel != "bin/python":
            yield GateError(shown, "link", target, f"a link inside the .venv (only bin/python points to the interpreter): "
                            f"an absolute one {MOVES}", REBUILD)
    elif not os.path.normpath(path.parent / target).startswith(str(venv) + os.sep):
        yield GateError(shown, "link", target, f"a link inside the .venv: one out of it {MOVES}", REBUILD)


def format_errors(rel: str, shown: str, name: str, text: str) -> Iterator[GateError]:
    """Absolute paths in the files that make up the venv, read by their format."""
    if rel == "pyvenv.cfg":
        for key, value in pyvenv_pairs(text):
            if key != "home" and value.startswith("/"):
                yield GateError(shown, key, value, f"no absolute path but `home` (the interpreter's folder): one {MOVES}", REBUILD)
    elif name.endswith(".pth"):
        for n, line in enumerate(text.splitlines(), 1):
            entry = line.strip()
            paths = QUOTED_ABSOLUTE.findall(entry) if entry.startswith("import") else [entry] if entry.startswith("/") else []
            for value in paths[:1]:
                yield GateError(shown, f"line {n}", value, f"a path relative to site-packages: an absolute .pth entry {MOVES}",
                                "an editable install writes one: install the project non-editable (nox -s cluster_venv does)")
    elif rel.startswith("bin/") and text.startswith("#!"):
        command = text[2:].split("\n", 1)[0].split()
        if command and command[0].startswith("/") and command[0] not in SHEBANGS:
            yield GateError(shown, "line 1", command[0], f"#!/bin/sh and uv's relocatable launcher: an absolute interpreter "
                            f"{MOVES}", f"{REBUILD} (uv venv --relocatable rewrites the entry points)")
    elif name == "RECORD" and Path(rel).parent.name.endswith(".dist-info"):
        for n, row in enumerate(csv.reader(io.StringIO(text)), 1):
            if row and row[0].startswith("/"):
                yield GateError(shown, f"line {n}", row[0], f"paths relative to site-packages: an absolute one {MOVES}", REBUILD)
    elif name == "direct_url.json":
        try:
            url = json.loads(text)
        except ValueError:
            return
        if url.get("dir_info", {}).get("editable"):
            yield GateError(shown, "dir_info.editable", url.get("url"), f"a non-editable install: an editable one {MOVES}",
                            "install the project non-editable (nox -s cluster_venv does)")
        elif str(url.get("url", "")).startswith("file:"):
            yield GateError(shown, "url", url["url"], f"no local file URL: one {MOVES}", REBUILD)


def notes(project: Project) -> list[str]:
    """What `venv-check` says beside the errors: the interpreter the nodes need, and whether this machine has it."""
    venv = venv_dir(project)
    record = build_record(venv) if venv.is_dir() else None
    if record is None:
        return []
    lines = [nodes_need(record)]
    target = interpreter(venv)
    if target and record.get("image") and not Path(target).exists():
        lines.append(f"info: {target} is not on this machine: the .venv runs in {record['image']} (or a node with that Python)")
    return lines
