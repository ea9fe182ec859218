"""Stage C4: every requirement item of requirements.md marked met / not met / not measured / not stated in README.md.

    items = statuses(project, requirements, drift_checks, device)   # one row per item, with the measured figure
    update_readme(project, items)                                 # rewrites only the marked section

Where a figure comes from: the SLA items `latency` and `throughput` from the production drift checks
(monitor.py), `quality` from the test metrics of the newest run's summary (runs/latest/summary.json:
after train_smoke or bugfix, the mini data after one epoch), `hardware` from the device
the service reports on /health. An item whose requirement states no target is `not stated`; one that
no stage measures (problem, goal, budget, deadline, data, software, deployment) is `not measured`.

The section is README.md's `requirements-status` (readme.py: between its markers; rewriting it with the
same inputs gives the same bytes, and every byte outside it is kept).
"""

from __future__ import annotations

from typing import Any

from ..artifacts import README as README_FILE
from ..artifacts import REQUIREMENTS, RUNNING_REPORT
from ..project import Project
from ..readme import markers, write_section
from ..sla import MET, NOT_MEASURED, NOT_MET, NOT_STATED, VERDICTS, verdict

SECTION = "requirements-status"
START, END = markers(SECTION)
README = README_FILE.path
DRIFT_ITEMS = {"latency": "latency_p95", "throughput": "throughput"}
UNMEASURED = {"problem statement": "qualitative: judge the model's predictions by hand",
              "task family": "qualitative: the generated model is of this family (tech.md)",
              "budget": "no stage measures cost", "deadline": "no stage measures the schedule",
              "data": "the full dataset is supplied by the user", "software": "pinned by the template (venv.md)",
              "deployment": "the target is not checked automatically"}


def quality(sla: dict[str, Any], source: str | None, metrics: dict[str, Any]) -> tuple[str, str]:
    """Accuracy, F1 and the error metric of the SLA against the run's test metrics."""
    wanted: list[tuple[str, str, float, bool, float]] = []  # (label, metric key, target, at least, scale to the target's unit)
    if sla.get("accuracy_pct") is not None:
        wanted.append(("accuracy", "test/acc", sla["accuracy_pct"], True, 100.0))
    if sla.get("f1_pct") is not None:
        wanted.append(("F1", "test/f1", sla["f1_pct"], True, 100.0))
    if sla.get("error_metric"):
        name = str(sla["error_metric"]["name"])
        wanted.append((name, f"test/{name.lower()}", sla["error_metric"]["value"], False, 1.0))
    if not wanted:
        return NOT_STATED, ", ".join(f"{k} {v:g}" for k, v in sorted(metrics.items())) or "-"
    verdicts, figures = [], []
    for label, key, target, at_least, scale in wanted:
        unit = "%" if scale == 100 else ""
        if key not in metrics:
            logged = ", ".join(f"{k} {v:g}" for k, v in sorted(metrics.items()))
            verdicts.append(NOT_MEASURED)
            figures.append(f"{label}: not logged by the run (it logged {logged or 'nothing'})" if source
                           else f"{label}: no run summary (nox -s train_smoke)")
            continue
        value = round(metrics[key] * scale, 4)
        verdicts.append(verdict(value, target, at_most=not at_least))
        figures.append(f"{label} {value:g}{unit} ({'>=' if at_least else '<='} {target:g}{unit})")
    status = NOT_MET if NOT_MET in verdicts else NOT_MEASURED if NOT_MEASURED in verdicts else MET
    where = f" on the mini data after 1 epoch ({source})" if source else ""
    return status, "; ".join(figures) + where


def hardware(constraints: dict[str, Any], device: str | None) -> tuple[str, str]:
    if device is None:
        return NOT_MEASURED, "/health reported no device"
    if constraints.get("cpu_only"):
        return (MET if device == "cpu" else NOT_MET), f"served on {device}"
    if constraints.get("gpu"):
        return (MET if device == "cuda" else NOT_MET), f"served on {device} (the GPU model is not checked)"
    return NOT_STATED, f"served on {device}"


def drift_status(check: dict[str, Any]) -> tuple[str, str]:
    if check["measured"] is None:
        return check["verdict"], check["source"]
    target = "" if check["target"] is None else f" ({'<=' if check['bound'] == 'at most' else '>='} {check['target']:g})"
    return check["verdict"], f"{check['measured']:g} {check['unit']}{target}, {check['endpoint']}: {check['source']}"


def statuses(project: Project, req: dict[str, Any], checks: list[dict[str, Any]], device: str | None) -> list[dict[str, Any]]:
    """One row per requirement item: id, name, statement, status and the measured figure."""
    by_check = {c["check"]: c for c in checks}
    source, summary = project.run_summary()
    metrics = summary.get("metrics") or {}
    rows = []
    for item in req["items"]:
        name = item["name"]
        if name in DRIFT_ITEMS:
            status, measured = drift_status(by_check[DRIFT_ITEMS[name]])
        elif name == "quality":
            status, measured = quality(req["sla"], source, metrics)
        elif name == "hardware":
            status, measured = hardware(req["constraints"], device)
        elif item["statement"].endswith("not stated"):
            status, measured = NOT_STATED, "-"
        else:
            status, measured = NOT_MEASURED, UNMEASURED.get(name, "no stage measures this item")
        rows.append({"id": item["id"], "name": name, "statement": item["statement"], "status": status, "measured": measured})
    return rows


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def section(items: list[dict[str, Any]]) -> str:
    """The Markdown between the markers (no timestamp: the same inputs give the same bytes)."""
    rows = [f"| {i['id']} | {cell(i['name'])} | {cell(i['statement'])} | **{i['status']}** | {cell(i['measured'])} |" for i in items]
    counts = {s: sum(1 for i in items if i["status"] == s) for s in VERDICTS}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    return (f"Each item of `{REQUIREMENTS}` against what was measured, written by `nox -s monitor` (stage C4; "
            f"details in `{RUNNING_REPORT}`): {summary}.\n\n| id | item | requirement | status | measured |\n"
            "|---|---|---|---|---|\n" + "\n".join(rows))


def update_readme(project: Project, items: list[dict[str, Any]]) -> bool:
    """Rewrite README.md's section; True when the file changed."""
    return write_section(project.path(README), SECTION, section(items))
