"""Stage B2: mini_dataset.md, what data/mini/ holds (samples, splits, classes, distribution, origin).

    python -m validators env-check --env debug-cpu     # writes it with env_check_report.md
"""

from __future__ import annotations

import csv
import re
import statistics
from collections import Counter
from collections.abc import Iterator
from typing import Any

from ..artifacts import MINI_DATASET
from ..errors import GateError
from ..frontmatter import join
from ..project import Project


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
    project.write_text(MINI_DATASET, join(report, "\n".join(body) + "\n"))
    return report


def rule_mini_dataset(project: Project) -> Iterator[GateError]:
    yield from project.validated(MINI_DATASET.path, MINI_DATASET.schema)[1]
