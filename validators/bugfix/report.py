"""bugfix_report.md (stage B3): the loop's record, written by code, and its gate.

    write(project, data, python)       # data: what bugfix.bugfix returned
    rule_bugfix_report(project)        # B3: schema, every critical issue fixed, a loadable checkpoint

The YAML front matter is the data (issues, attempts with diffs, test results, final run); the
body renders it for people: the issue list, a summary per bug, the fix log with each diff, and
the test results.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from ..artifacts import BUGFIX_REPORT
from ..errors import GateError
from ..frontmatter import join
from ..project import Project

REPORT = BUGFIX_REPORT.path
HINT = "run `nox -s bugfix` again after fixing the error by hand (the report names it)"


def render(data: dict[str, Any]) -> str:
    final = data["final_run"]
    lines = [f"# Bugfix report: {data['result']}", "",
             f"`{' '.join(data['command'])}` (stage B3), at most {data['max_attempts']} fix attempts, "
             f"{data['run_timeout_s']:.0f} s per run; LLM: {data['llm_model'] or 'none configured'}.", ""]
    if data["stop_reason"]:
        lines += [f"Stopped: {data['stop_reason']}.", ""]
    lines += ["## Issues", "", "| id | critical | status | rule | summary |", "|---|---|---|---|---|"]
    for issue in data["issues"]:
        status = issue["status"] + (f" (attempt {issue['fixed_by']})" if issue["fixed_by"] else "")
        lines.append(f"| {issue['id']} | {'yes' if issue['critical'] else 'no'} | {status} | "
                     f"{issue['rule'] or '-'} | {issue['summary'].replace('|', '/')} |")
    if not data["issues"]:
        lines.append("| - | - | - | - | the 1-epoch run passed at the first try |")
    lines += ["", "## Fix log", ""]
    for attempt in data["attempts"]:
        lines += [f"### Attempt {attempt['n']} ({attempt['issue']}): {attempt['outcome']}", "",
                  f"- source: {attempt['source'] or 'none'}", f"- action: {attempt['action'] or 'none'}",
                  f"- why: {attempt['reason']}"]
        if attempt["run"]:
            run = attempt["run"]
            lines.append(f"- re-run: {'passed' if run['passed'] else 'failed'} in {run['seconds']} s"
                         + (f" ({run['error']})" if run["error"] else ""))
        if attempt["tests"]:
            tests = attempt["tests"]
            lines.append(f"- tests: {len(tests['failed'])} failing, regressed: {', '.join(tests['regressed']) or 'none'}")
        if attempt["diff"]:
            lines += ["", "```diff", attempt["diff"].rstrip("\n"), "```"]
        lines.append("")
    if not data["attempts"]:
        lines += ["No fix was attempted.", ""]
    lines += ["## Test results", ""]
    tested = [a for a in data["attempts"] if a["tests"]]
    if tested:
        last = tested[-1]["tests"]
        lines.append(f"After attempt {tested[-1]['n']}: failing tests: {', '.join(last['failed']) or 'none'}; "
                     f"regressed: {', '.join(last['regressed']) or 'none'} ({last['seconds']} s).")
    else:
        lines.append("The project's tests ran only after a fix that made the run pass; none did here.")
    lines += ["", "## Final run", "",
              f"{'passed' if final['passed'] else 'failed'} in {final['seconds']} s"
              + (f"; checkpoint `{final.get('checkpoint')}`" if final.get("checkpoint") else "")
              + (f"; error: {final['error']}" if final["error"] else "") + "."]
    return "\n".join(lines) + "\n"


def write(project: Project, data: dict[str, Any], python: str) -> dict[str, Any]:
    meta = {"schema_version": 1, "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "python": python, **data}
    project.write_text(REPORT, join(meta, render(meta)))
    return meta


def unfixed(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in data["issues"] if i["critical"] and i["status"] != "fixed"]


def rule_bugfix_report(project: Project) -> Iterator[GateError]:
    doc, errors = project.validated(REPORT, "bugfix_report")
    yield from errors
    if doc is None:
        return
    for n, issue in enumerate(doc["issues"]):
        if issue["critical"] and issue["status"] != "fixed":
            yield GateError(REPORT, f"issues[{n}].status", issue["status"], f"critical error {issue['id']} fixed", HINT)
    final = doc["final_run"]
    if not final["passed"]:
        yield GateError(REPORT, "final_run.passed", False, "a passing 1-epoch run", HINT)
        return
    yield from checkpoint_errors(project, final.get("checkpoint"))


def checkpoint_errors(project: Project, checkpoint: str | None) -> Iterator[GateError]:
    """The run's checkpoint must exist and load as a Lightning checkpoint (weights and hyperparameters)."""
    path = project.path(checkpoint) if checkpoint else None
    if path is None or not path.is_file():
        yield GateError(REPORT, "final_run.checkpoint", checkpoint, "a checkpoint file that exists", HINT)
        return
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any load failure is the finding
        yield GateError(REPORT, "final_run.checkpoint", checkpoint, "a checkpoint torch.load can read",
                        f"{type(err).__name__}: {err}"[:200])
        return
    missing = [k for k in ("state_dict", "hyper_parameters") if k not in state]
    if missing:
        yield GateError(REPORT, "final_run.checkpoint", checkpoint, "a Lightning checkpoint with state_dict and "
                        f"hyper_parameters (missing: {', '.join(missing)})", "save it through the Trainer")
