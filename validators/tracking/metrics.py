"""Stage D6: the metric series of one run, from its CSV log (offline) or from W&B history rows.

    series = from_csv(Path("runs/20261126T035258Z-local"))   # {name: Series}; CsvLog files read, oldest first
    series = from_rows(rows)                                  # W&B history rows (`trainer/global_step`, `epoch`, metrics)
    s = series["val/loss"]; s.final, s.best, s.goal, s.by_epoch()   # Point(step, epoch, value), "min", [(epoch, mean)]

The CSV log is what the template's training writes with Lightning's CSVLogger: `csv/metrics.csv`
(columns `epoch`, `step`, then one per metric; a row holds the metrics of one `log_metrics` call and
leaves the others empty). A SLURM job that is requeued resumes from its last checkpoint in the same run
folder and logs into `csv/restart-<n>/metrics.csv`, so the rows from before the requeue stay. Merging
them: a later file replaces the earlier rows from its own first step on (the steps after the checkpoint
were trained again), so each step keeps the value of the training that went on.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CSV_DIR, CSV_FILE = "csv", "metrics.csv"
RESTART = re.compile(r"^restart-(\d+)$")
LOWER_IS_BETTER = ("loss", "mae", "mse", "rmse", "mape", "err", "nll", "perplexity")
W_STEP, W_EPOCH = "trainer/global_step", "epoch"  # what Lightning's WandbLogger logs beside each row's metrics


@dataclass(frozen=True)
class Point:
    step: int
    epoch: int | None
    value: float


@dataclass
class Series:
    """One metric as logged, in step order."""

    name: str
    points: list[Point] = field(default_factory=list)

    @property
    def stage(self) -> str:
        """`train`, `val`, `test` (the part before the first `/`), or '' for an unprefixed metric."""
        return self.name.split("/", 1)[0] if "/" in self.name else ""

    @property
    def family(self) -> str:
        """What the metric measures, for grouping curves: `train/loss_step` and `val/loss` are both `loss`."""
        base = self.name.split("/", 1)[-1]
        return re.sub(r"_(step|epoch)$", "", base)

    @property
    def goal(self) -> str:
        return "min" if any(word in self.family.lower() for word in LOWER_IS_BETTER) else "max"

    @property
    def final(self) -> Point:
        return self.points[-1]

    @property
    def best(self) -> Point:
        """The best finite value (the earliest of equals); the final point when none is finite."""
        finite = [p for p in self.points if math.isfinite(p.value)]
        if not finite:
            return self.final
        pick = min if self.goal == "min" else max
        return pick(finite, key=lambda p: p.value)

    def by_epoch(self) -> list[tuple[int, float]]:
        """(epoch, mean of the values logged in it), epochs in order: one value per epoch for per-step metrics."""
        grouped: dict[int, list[float]] = {}
        for p in self.points:
            if p.epoch is not None:
                grouped.setdefault(p.epoch, []).append(p.value)
        return [(epoch, sum(values) / len(values)) for epoch, values in sorted(grouped.items())]


class MetricsError(ValueError):
    """A CSV log that cannot be read as Lightning writes it: which file, which line."""


def csv_files(run_dir: Path) -> list[Path]:
    """csv/metrics.csv, then csv/restart-<n>/metrics.csv by n: the order the training wrote them."""
    folder = run_dir / CSV_DIR
    restarts = sorted((int(m.group(1)), p / CSV_FILE) for p in folder.glob("restart-*")
                      if (m := RESTART.match(p.name)) and (p / CSV_FILE).is_file()) if folder.is_dir() else []
    first = [folder / CSV_FILE] if (folder / CSV_FILE).is_file() else []
    return first + [path for _, path in restarts]


def number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _read(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "step" not in reader.fieldnames:
            raise MetricsError(f"{path}: no `step` column: not a Lightning CSVLogger metrics.csv")
        for line, row in enumerate(reader, start=2):
            step = number(row.get("step") or "")
            if step is None:
                raise MetricsError(f"{path}: line {line}: step {row.get('step')!r} is not a number")
            epoch = number(row.get("epoch") or "")
            values = {k: v for k, v in row.items() if k not in ("step", "epoch") and k and v not in (None, "")}
            rows.append({"step": int(step), "epoch": None if epoch is None else int(epoch),
                         "values": {k: x for k, v in values.items() if (x := number(v)) is not None}})
    return rows


def merge(files: list[list[dict[str, Any]]]) -> dict[str, Series]:
    """Rows of several logs, oldest first, into series; a later log replaces the earlier rows from its first step on."""
    series: dict[str, Series] = {}
    for index, rows in enumerate(files):
        if index and rows:
            cut = min(r["step"] for r in rows)
            for s in series.values():
                s.points = [p for p in s.points if p.step < cut]
        for row in rows:
            for name, value in row["values"].items():
                series.setdefault(name, Series(name)).points.append(Point(row["step"], row["epoch"], value))
    for s in series.values():
        s.points.sort(key=lambda p: p.step)  # stable: rows of one step keep the order they were logged in
    return {name: s for name, s in sorted(series.items()) if s.points}


def from_csv(run_dir: Path) -> dict[str, Series]:
    """Every metric of the run's CSV log ({} when the run wrote none)."""
    return merge([_read(path) for path in csv_files(run_dir)])


def from_rows(rows: list[dict[str, Any]]) -> dict[str, Series]:
    """W&B history rows (in `_step` order) into series: Lightning's global step and epoch, numeric metrics only."""
    out = []
    for row in sorted(rows, key=lambda r: r.get("_step", 0)):
        step = row.get(W_STEP, row.get("_step"))
        if not isinstance(step, int | float):
            continue
        epoch = row.get(W_EPOCH)
        values = {k: float(v) for k, v in row.items() if not k.startswith("_") and k not in (W_STEP, W_EPOCH)
                  and isinstance(v, int | float) and not isinstance(v, bool)}
        out.append({"step": int(step), "epoch": int(epoch) if isinstance(epoch, int | float) else None, "values": values})
    return merge([out])
