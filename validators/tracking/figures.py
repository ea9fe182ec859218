"""Stage D6: the run's curves as PNG, one figure per metric family and x axis (matplotlib, Agg: no display).

    drawn = draw(series, Path("reports/results/<run>"))   # [Drawn("loss_by_step.png", {"train/loss": ([3, 7], [2.3, 2.1])})]

A family is what the metrics measure (`train/loss_step`, `train/loss` and `val/loss` are `loss`); its
figure by step draws every logged point of each train and val metric, its figure by epoch one point per
epoch (the mean of what was logged in it: per-step metrics average, per-epoch metrics are their value).
Test metrics are single points after training; they are in the tables, not the curves. `Drawn.lines` is
read back from the axes' Line2D objects just before saving: what the PNG shows, not what was meant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..artifacts import RESULTS_FIGURE
from ..errors import DependencyError
from .metrics import Series

AXES = ("step", "epoch")
STAGE_ORDER = {"train": 0, "val": 1}


@dataclass(frozen=True)
class Drawn:
    file: str                                             # the PNG's name, in the output folder
    family: str
    axis: str
    lines: dict[str, tuple[list[float], list[float]]]     # label -> (x, y) as drawn


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise DependencyError("matplotlib", "drawing the run's curves", "pip install matplotlib") from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def curves(series: dict[str, Series]) -> dict[str, list[Series]]:
    """family -> its train and val (and unprefixed) series, train first."""
    families: dict[str, list[Series]] = {}
    for s in series.values():
        if s.stage != "test":
            families.setdefault(s.family, []).append(s)
    return {f: sorted(group, key=lambda s: (STAGE_ORDER.get(s.stage, 2), s.name)) for f, group in sorted(families.items())}


def file_name(family: str, axis: str) -> str:
    return RESULTS_FIGURE.path.rsplit("/", 1)[-1].format(metric=re.sub(r"[^A-Za-z0-9_.-]+", "_", family), axis=axis)


def draw(series: dict[str, Series], folder: Path, title: str = "") -> list[Drawn]:
    """Write `<family>_by_step.png` and `<family>_by_epoch.png` into `folder`; what each one drew."""
    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    drawn = []
    for family, group in curves(series).items():
        for axis in AXES:
            points = {s.name: ([p.step for p in s.points], [p.value for p in s.points]) if axis == "step"
                      else ([e for e, _ in s.by_epoch()], [v for _, v in s.by_epoch()]) for s in group}
            points = {name: xy for name, xy in points.items() if xy[0]}
            if not points:
                continue
            fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
            for name, (x, y) in points.items():
                ax.plot(x, y, marker="o" if len(x) < 30 else None, markersize=3, label=name)
            ax.set_xlabel(axis)
            ax.set_ylabel(family)
            ax.set_title(f"{title}: {family} by {axis}" if title else f"{family} by {axis}", fontsize=10)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
            if axis == "epoch":
                ax.xaxis.get_major_locator().set_params(integer=True)
            fig.tight_layout()
            lines = {line.get_label(): ([float(v) for v in line.get_xdata()], [float(v) for v in line.get_ydata()])
                     for line in ax.get_lines()}
            name = file_name(family, axis)
            fig.savefig(folder / name)
            plt.close(fig)
            drawn.append(Drawn(name, family, axis, lines))
    return drawn
