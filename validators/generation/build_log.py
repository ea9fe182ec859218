"""Stage A3 build log: run every task's checks, record result and evidence, and re-check them.

    python -m validators build-log     # writes PROJECT_BUILD_LOG.md from task.md's checks

Check kinds (task.md `checks`): `file_exists` (a path), `imports` (a module under src/), `runs` (a
command; a leading `python` is this interpreter) and `config_loads` (overrides, or `defaults`).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from ..artifacts import BUILD_LOG, TASK
from ..errors import GateError
from ..frontmatter import join
from ..project import Project

FILE = BUILD_LOG.path
TIMEOUT_S = 120


def run_check(project: Project, check: dict[str, str]) -> tuple[bool, str]:
    """(passed, evidence) for one check, run in a subprocess from the project root."""
    kind, target = check["kind"], check["target"]
    if kind == "file_exists":
        path = project.root / target
        return path.exists(), f"{target} {'exists' if path.exists() else 'is missing'}"
    prelude = "import sys; sys.path.insert(0, 'src'); "
    if kind == "imports":
        argv = [sys.executable, "-c", prelude + f"import {target}"]
    elif kind == "config_loads":
        overrides = [] if target == "defaults" else shlex.split(target)
        argv = [sys.executable, "-c", prelude + f"from {project.package}.config import load_config; "
                f"load_config({overrides!r})"]
    elif kind == "runs":
        argv = shlex.split(target)
        if argv and argv[0] == "python":
            argv[0] = sys.executable
    else:
        return False, f"unknown check kind {kind!r}"
    start = time.perf_counter()
    try:
        result = subprocess.run(argv, cwd=project.root, capture_output=True, text=True, timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as err:
        return False, f"`{target}`: {type(err).__name__}: {err}"
    seconds = time.perf_counter() - start
    if result.returncode == 0:
        return True, f"{kind} `{target}`: exit 0 in {seconds:.1f}s"
    last = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
    return False, f"{kind} `{target}`: exit {result.returncode}: {last[0][:200]}"


BATCH = """
import json, sys, traceback
sys.path.insert(0, "src")
results = []
for kind, target in json.loads(sys.argv[1]):
    try:
        if kind == "imports":
            __import__(target)
        else:
            from {package}.config import load_config
            load_config([] if target == "defaults" else target.split())
        results.append([True, ""])
    except BaseException as err:  # noqa: BLE001 - report, do not stop the batch
        results.append([False, (traceback.format_exception_only(type(err), err)[-1]).strip()[:200]])
print(json.dumps(results))
"""


def run_checks(project: Project, checks: list[dict[str, str]], *, reuse: bool = False) -> list[tuple[bool, str]]:
    """run_check for many checks; `imports` and `config_loads` share one interpreter (one torch import).

    With `reuse`, a check already run by this process (same project, kind and target) is not run
    again: `python -m validators reports` writes the build log and then reviews it moments later.
    """
    key = lambda c: (str(project.root), c["kind"], c["target"])  # noqa: E731
    if reuse and all(key(c) in _VERDICTS for c in checks):
        return [_VERDICTS[key(c)] for c in checks]
    verdicts = _run_checks(project, checks)
    _VERDICTS.update((key(c), v) for c, v in zip(checks, verdicts, strict=True))
    return verdicts


_VERDICTS: dict[tuple[str, str, str], tuple[bool, str]] = {}


def _run_checks(project: Project, checks: list[dict[str, str]]) -> list[tuple[bool, str]]:
    batched = [c for c in checks if c["kind"] in ("imports", "config_loads")]
    results: dict[int, tuple[bool, str]] = {}
    if batched:
        start = time.perf_counter()
        payload = json.dumps([[c["kind"], c["target"]] for c in batched])
        try:
            out = subprocess.run([sys.executable, "-c", BATCH.format(package=project.package), payload], cwd=project.root,
                                 capture_output=True, text=True, timeout=TIMEOUT_S)
            verdicts = json.loads(out.stdout.strip().splitlines()[-1])
        except (OSError, subprocess.TimeoutExpired, ValueError, IndexError) as err:
            verdicts = [[False, f"{type(err).__name__}: {err}"]] * len(batched)
        seconds = time.perf_counter() - start
        for check, (ok, why) in zip(batched, verdicts, strict=True):
            detail = f"{check['kind']} `{check['target']}`: " + (f"ok ({seconds:.1f}s for {len(batched)} checks)" if ok else why)
            results[id(check)] = (ok, detail)
    return [results.get(id(c)) or run_check(project, c) for c in checks]


def build(project: Project) -> dict[str, Any]:
    tasks, errors = project.front(TASK.path)
    if tasks is None:
        raise errors[0]
    entries = []
    every = [check for task in tasks["tasks"] for check in task["checks"]]
    verdicts = dict(zip(map(id, every), run_checks(project, every), strict=True))
    for task in tasks["tasks"]:
        results = [verdicts[id(check)] for check in task["checks"]]
        entries.append({"task": task["id"], "title": task["title"],
                        "result": "done" if all(ok for ok, _ in results) else "failed",
                        "evidence": [{"check": f"{c['kind']}: {c['target']}", "passed": ok, "detail": detail}
                                     for c, (ok, detail) in zip(task["checks"], results, strict=True)]})
    return {"schema_version": 1, "generator": "validators.build_log", "python": sys.version.split()[0],
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "entries": entries}


def write(project: Project) -> dict[str, Any]:
    log = build(project)
    lines = ["# Project build log (stage A3)", "",
             "Written by `python -m validators build-log`: every task of task.md, its checks run by code.", "",
             "| task | result | evidence |", "|---|---|---|"]
    lines += [f"| {e['task']} {e['title']} | {e['result']} | " + "; ".join(ev["detail"] for ev in e["evidence"]) + " |"
              for e in log["entries"]]
    project.write_text(FILE, join(log, "\n".join(lines) + "\n"))
    return log


def rule_build_log(project: Project, *, reuse: bool = False) -> Iterator[GateError]:
    """Every task of task.md has an entry marked done whose evidence a fresh check confirms.

    `reuse`: accept this process's own verdicts from `build()` (see `run_checks`)."""
    log, errors = project.validated(FILE, "build_log")
    tasks, task_errors = project.front(TASK.path)
    if log is None or tasks is None:
        yield from errors or task_errors
        return
    entries = {e["task"]: (i, e) for i, e in enumerate(log["entries"])}
    every = [check for task in tasks["tasks"] for check in task["checks"]]
    verdicts = dict(zip(map(id, every), run_checks(project, every, reuse=reuse), strict=True))
    for task in tasks["tasks"]:
        if task["id"] not in entries:
            yield GateError(FILE, f"entries.{task['id']}", None, f"an entry for task {task['id']} of task.md",
                            "re-run `python -m validators build-log` (nox -s review)")
            continue
        i, entry = entries[task["id"]]
        if entry["result"] != "done":
            yield GateError(FILE, f"entries[{i}].result", entry["result"], "done",
                            "fix what the evidence says, then re-run `nox -s review`")
        for check in task["checks"]:
            ok, detail = verdicts[id(check)]
            if not ok:
                yield GateError(FILE, f"entries[{i}].evidence", f"{check['kind']}: {check['target']}",
                                "evidence that a fresh check confirms", detail)
