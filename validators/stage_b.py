"""Stages B1-B2 in the project: the rules decision, the environment report, the mini-data report.

    python -m validators rules [--inherit]     # B1: CLAUDE.local.md (customised) or CLAUDE.inherited.md
    python -m validators env-check --env debug-cpu
    python -m validators mini-report            # B2: mini_dataset.md from data/mini/
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import platform
import re
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from .errors import GateError
from .frontmatter import join
from .project import Project
from .schema import schema_errors

RULE_LINE = re.compile(r"^(\d+)\. \*\*(.+?)\*\*: (.+)$")
DECISIONS = {"customised": "CLAUDE.local.md", "inherited": "CLAUDE.inherited.md"}



def canonical(name: str) -> str:
    """PEP 503 name: `prometheus_client` and `Prometheus-Client` are the same distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()

def claude_rules(text: str) -> list[tuple[str, str]]:
    """(title, rule) for each numbered line under '## Rules' of CLAUDE.md."""
    section = text.split("## Rules", 1)[-1].split("\n## ", 1)[0]
    return [(m.group(2), m.group(3)) for m in map(RULE_LINE.match, section.splitlines()) if m]


def decide_rules(project: Project, *, inherit: bool, ask: Any = None) -> str:
    """Write the B1 decision; `ask(rules) -> list of (title, new text or None)` customises interactively."""
    source = project.read("CLAUDE.md")
    if source is None:
        raise GateError("CLAUDE.md", "", None, "the file to exist", "`copier update --trust` restores it")
    rules = claude_rules(source)
    today = time.strftime("%Y-%m-%d")
    changes = [] if inherit or ask is None else [
        {"date": today, "rule": title, "change": new} for title, new in ask(rules) if new]
    decision = "customised" if changes else "inherited"
    meta = {"schema_version": 1, "decision": decision, "decided": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "source": "CLAUDE.md", "source_sha256": hashlib.sha256(source.encode()).hexdigest(), "changes": changes}
    changed = {c["rule"]: c["change"] for c in changes}
    lines = [f"# CLAUDE rules: {decision} on {today}", "",
             "The rules of CLAUDE.md as this project applies them (stage B1).", "", "## Rules", ""]
    lines += [f"{n}. **{title}**: {changed.get(title, text)}" for n, (title, text) in enumerate(rules, 1)]
    if changes:
        lines += ["", "## Change log", "", "| date | rule | change |", "|---|---|---|"]
        lines += [f"| {c['date']} | {c['rule']} | {c['change']} |" for c in changes]
    for other in DECISIONS.values():
        (project.root / other).unlink(missing_ok=True)
    (project.root / DECISIONS[decision]).write_text(join(meta, "\n".join(lines) + "\n"), encoding="utf-8")
    return DECISIONS[decision]


def rule_rules_decision(project: Project) -> Iterator[GateError]:
    present = [name for name in DECISIONS.values() if (project.root / name).exists()]
    if len(present) != 1:
        yield GateError("CLAUDE.local.md", "", present, "exactly one of CLAUDE.local.md or CLAUDE.inherited.md",
                        "run `nox -s rules` (add `-- --inherit` to accept the rules without questions)")
        return
    doc, errors = project.front(present[0])
    if doc is None:
        yield from errors
        return
    yield from schema_errors(doc, "rules_decision", file=present[0])
    source = project.read("CLAUDE.md") or ""
    if doc.get("source_sha256") != hashlib.sha256(source.encode()).hexdigest():
        yield GateError(present[0], "source_sha256", doc.get("source_sha256"), "the hash of the current CLAUDE.md",
                        "CLAUDE.md changed since the decision (a template update?): run `nox -s rules` again")


def env_report(project: Project, env: str) -> dict[str, Any]:
    import torch

    gpus = [{"name": torch.cuda.get_device_name(i),
             "memory_gb": round(torch.cuda.get_device_properties(i).total_memory / 1e9, 1)}
            for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else "none"
    packages = {canonical(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    return {"schema_version": 1, "environment": env, "python_version": platform.python_version(),
            "packages_installed": dict(sorted(packages.items())),
            "torch": {"version": str(torch.__version__), "cuda_available": torch.cuda.is_available(),
                      "cuda_version": None if torch.version.cuda is None else str(torch.version.cuda)},
            "gpu": gpus, "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def write_env_report(project: Project, env: str) -> dict[str, Any]:
    report = env_report(project, env)
    gpu = "none" if report["gpu"] == "none" else ", ".join(f"{g['name']} ({g['memory_gb']} GB)" for g in report["gpu"])
    body = [f"# Environment check: {env} (stage B2)", "", f"- Python {report['python_version']}",
            f"- torch {report['torch']['version']}, CUDA available: {report['torch']['cuda_available']}"
            f" (CUDA {report['torch']['cuda_version']})", f"- GPU: {gpu}",
            f"- {len(report['packages_installed'])} packages installed (front matter)"]
    (project.root / "env_check_report.md").write_text(join(report, "\n".join(body) + "\n"), encoding="utf-8")
    return report


def rule_env_check(project: Project) -> Iterator[GateError]:
    doc, errors = project.validated("env_check_report.md", "env_check")
    yield from errors
    if doc is None:
        return
    wanted = str(project.answers.get("python_version", ""))
    if not doc["python_version"].startswith(wanted + "."):
        yield GateError("env_check_report.md", "python_version", doc["python_version"], f"Python {wanted}.x", "rebuild: nox -s setup")
    from .venv_spec import ENVIRONMENTS, PIN

    for line in (project.read(ENVIRONMENTS[doc["environment"]]) or "").splitlines():
        m = PIN.match(line.strip())
        if m and (not m.group(3) or "linux" in m.group(3) and "!=" not in m.group(3)):
            got = doc["packages_installed"].get(canonical(m.group(1)))
            if got != m.group(2):
                yield GateError("env_check_report.md", f"packages_installed.{canonical(m.group(1))}", got,
                                f"{m.group(2)} (pinned in {ENVIRONMENTS[doc['environment']]})", "rebuild: nox -s setup")


def _read(path: Any) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def mini_report(project: Project) -> dict[str, Any]:
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(OmegaConf.load(project.root / "configs/data/mini.yaml"))
    root = project.root / str(data.get("root", "data/mini"))
    card_text = (root / "DATA_CARD.md").read_text(encoding="utf-8") if (root / "DATA_CARD.md").exists() else ""
    card = dict(re.findall(r"^- (\w+): (.+)$", card_text, re.MULTILINE))  # the bullet lines of the data card
    family = project.answers["task_family"]
    if "manifest" in data:  # images: manifest path,label,split
        rows = _read(root / data["manifest"])
        labels, splits = [r["label"] for r in rows], Counter(r["split"] for r in rows)
        fmt = "PNG image folders + " + data["manifest"]
    elif "file" in data:  # one series
        rows = _read(root / data["file"])
        values = [float(r[data["value_column"]]) for r in rows]
        labels, splits = None, {"series": len(rows)}
        fmt = f"CSV {data['file']} ({data['date_column']},{data['value_column']})"
    else:
        splits, labels = {}, []
        for name in ("train", "val", "test"):
            part = _read(root / f"{name}.csv")
            splits[name] = len(part)
            labels += [r[data.get("label_column", data.get("target", "label"))] for r in part]
        fmt = "CSV train.csv, val.csv, test.csv"
        if "regression" in family:
            values, labels = [float(v) for v in labels], None
    if labels is not None:
        classes = sorted(set(labels), key=lambda c: (len(c), c))
        distribution = {c: labels.count(c) for c in classes}
    else:
        classes = None
        distribution = {"min": min(values), "mean": round(statistics.mean(values), 4), "max": max(values),
                        "std": round(statistics.pstdev(values), 4)}
    return {"schema_version": 1, "samples": int(sum(splits.values())), "splits": dict(splits), "classes": classes,
            "distribution": distribution, "format": fmt, "origin": str(card.get("origin", "see data/mini/DATA_CARD.md")),
            "licence": str(card.get("licence", "see data/mini/DATA_CARD.md")), "generated": "generated" in card.get("kind", ""),
            "read_with": "python scripts/train.py data=mini (the default): the same loader reads data=full"}


def write_mini_report(project: Project) -> dict[str, Any]:
    report = mini_report(project)
    body = ["# Mini dataset (stage B2)", "", f"{report['samples']} samples, {report['format']}.", "",
            "| split | samples |", "|---|---:|", *[f"| {k} | {v} |" for k, v in report["splits"].items()], "",
            "| " + ("class | count" if report["classes"] else "statistic | value") + " |", "|---|---:|",
            *[f"| {k} | {v} |" for k, v in report["distribution"].items()], "",
            f"Origin: {report['origin']} (licence: {report['licence']}{'; generated' if report['generated'] else ''}).", "",
            f"How to use: {report['read_with']}. `scripts/explore_mini.ipynb` plots it."]
    (project.root / "mini_dataset.md").write_text(join(report, "\n".join(body) + "\n"), encoding="utf-8")
    return report


def rule_mini_dataset(project: Project) -> Iterator[GateError]:
    yield from project.validated("mini_dataset.md", "mini_dataset")[1]
