"""Build the shipped mini datasets, hooks/mini/<family>/, from data inside installed packages.

Framework only (numpy, scikit-learn, statsmodels, Pillow: the repository's locked environment);
copier never runs it. `nox -s mini_data` runs it after an edit here, and the tests rebuild every
family and compare it with what ships (tests/template/test_mini_data.py), so the two never drift.

    python hooks/mini/build.py [--family image_classification ...] [--out hooks/mini]

Each family's folder holds:

    files/       what hooks/mini_data.py copies into a project's data/mini/, as it is
    stats.json   what the data card (data/mini/DATA_CARD.md) reports about files/
    NOTICE.md    origin, licence and changes made (written by hand; build.py leaves it alone)

Real data that ships inside an installed package is used where it exists (scikit-learn's digits,
breast cancer and diabetes; statsmodels' Mauna Loa CO2). Text has no bundled corpus, so a small
bilingual sentiment set is generated from phrase templates, and the data card says so.
Nothing is downloaded. Every split is seeded, so a family always gives the same files.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np

SHIPPED = Path(__file__).resolve().parent
SEED = 0
SPLITS = (("train", 0.7), ("val", 0.15), ("test", 0.15))
IMAGES_PER_CLASS = 60


def split_names(n: int, rng: np.random.Generator) -> list[str]:
    """Assign each of n rows to train/val/test (70/15/15) in a seeded random order."""
    order = rng.permutation(n)
    names = [""] * n
    start = 0
    for i, (name, frac) in enumerate(SPLITS):
        stop = n if i == len(SPLITS) - 1 else start + round(frac * n)
        for j in order[start:stop]:
            names[j] = name
        start = stop
    return names


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def write_split_csvs(out: Path, header: list[str], rows: list[list], splits: list[str]) -> dict:
    counts = {}
    for name, _ in SPLITS:
        part = [r for r, s in zip(rows, splits, strict=True) if s == name]
        write_csv(out / f"{name}.csv", header, part)
        counts[name] = len(part)
    return counts


def image_classification(out: Path) -> dict:
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(SEED)
    keep = np.concatenate(
        [rng.permutation(np.flatnonzero(digits.target == c))[:IMAGES_PER_CLASS] for c in range(10)]
    )
    keep.sort()
    splits = split_names(len(keep), rng)
    rows = []
    for idx, split in zip(keep, splits, strict=True):
        label = str(digits.target[idx])
        rel = Path("images") / label / f"{idx:04d}.png"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        pixels = (digits.images[idx] * (255.0 / 16.0)).round().astype(np.uint8)  # (8, 8), 0..16 -> 0..255
        Image.fromarray(pixels).save(out / rel)
        rows.append([rel.as_posix(), label, split])
    write_csv(out / "split.csv", ["path", "label", "split"], rows)
    return {
        "format": "PNG image folders images/<label>/<id>.png (8x8 grayscale) + split.csv (path,label,split)",
        "samples": len(rows),
        "splits": dict(Counter(r[2] for r in rows)),
        "classes": dict(sorted(Counter(r[1] for r in rows).items())),
    }


POSITIVE_EN = ["great", "excellent", "reliable", "fast", "sturdy", "lovely", "accurate", "quiet"]
NEGATIVE_EN = ["broken", "slow", "flimsy", "noisy", "awful", "useless", "faulty", "overpriced"]
ITEMS_EN = ["battery", "screen", "keyboard", "charger", "camera", "speaker", "case", "cable"]
POSITIVE_ZH = ["很好", "非常满意", "质量可靠", "速度很快", "做工精细", "物超所值", "安静", "好用"]
NEGATIVE_ZH = ["很差", "非常失望", "质量很差", "速度太慢", "做工粗糙", "不值这个价", "噪音大", "难用"]
ITEMS_ZH = ["电池", "屏幕", "键盘", "充电器", "相机", "音箱", "外壳", "数据线"]


def text_classification(out: Path, n: int = 600) -> dict:
    rng = np.random.default_rng(SEED)
    rows = []
    for i in range(n):
        label = "positive" if i % 2 == 0 else "negative"
        if i % 4 < 2:
            words = POSITIVE_EN if label == "positive" else NEGATIVE_EN
            a, b = rng.choice(words, 2, replace=False)
            item = rng.choice(ITEMS_EN)
            text = f"The {item} is {a} and honestly {b}."
        else:
            words = POSITIVE_ZH if label == "positive" else NEGATIVE_ZH
            a, b = rng.choice(words, 2, replace=False)
            item = rng.choice(ITEMS_ZH)
            text = f"这个{item}{a}，而且{b}。"
        rows.append([text, label])
    counts = write_split_csvs(out, ["text", "label"], rows, split_names(n, rng))
    return {
        "format": "CSV train.csv/val.csv/test.csv with columns text,label (UTF-8)",
        "samples": n,
        "splits": counts,
        "classes": dict(sorted(Counter(r[1] for r in rows).items())),
    }


def _table(out: Path, x: np.ndarray, y: np.ndarray, names: list[str], target_fmt) -> dict:
    rng = np.random.default_rng(SEED)
    header = [n.replace(" ", "_") for n in names] + ["target"]
    rows = [[f"{v:.6g}" for v in xi] + [target_fmt(yi)] for xi, yi in zip(x, y, strict=True)]
    counts = write_split_csvs(out, header, rows, split_names(len(rows), rng))
    return {
        "format": f"CSV train.csv/val.csv/test.csv: {len(names)} numeric feature columns + target",
        "samples": len(rows),
        "splits": counts,
        "features": len(names),
    }


def tabular_classification(out: Path) -> dict:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    labels = list(data.target_names)
    card = _table(out, data.data, data.target, list(data.feature_names), lambda y: labels[int(y)])
    card["classes"] = dict(sorted(Counter(labels[int(y)] for y in data.target).items()))
    return card


def tabular_regression(out: Path) -> dict:
    from sklearn.datasets import load_diabetes

    data = load_diabetes()
    card = _table(out, data.data, data.target, list(data.feature_names), lambda y: f"{y:.6g}")
    card["target_range"] = [float(data.target.min()), float(data.target.max())]
    return card


def time_series_forecasting(out: Path) -> dict:
    from statsmodels.datasets import co2

    frame = co2.load_pandas().data["co2"].interpolate(limit_direction="both")
    rows = [[ts.strftime("%Y-%m-%d"), f"{v:.2f}"] for ts, v in frame.items()]
    write_csv(out / "series.csv", ["date", "value"], rows)
    return {
        "format": "CSV series.csv with columns date,value, weekly, chronological (gaps interpolated)",
        "samples": len(rows),
        "span": [rows[0][0], rows[-1][0]],
    }


WRITERS = {
    "image_classification": image_classification,
    "text_classification": text_classification,
    "tabular_classification": tabular_classification,
    "tabular_regression": tabular_regression,
    "time_series_forecasting": time_series_forecasting,
}


def build(family: str, folder: Path) -> dict:
    """Rewrite folder/files/ and folder/stats.json for `family`; anything else in folder is kept."""
    files = folder / "files"
    if files.exists():
        shutil.rmtree(files)  # a file the writer no longer makes must not linger
    files.mkdir(parents=True)
    stats = WRITERS[family](files)
    (folder / "stats.json").write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", action="append", choices=sorted(WRITERS), help="default: every family")
    parser.add_argument("--out", type=Path, default=SHIPPED, help="default: %(default)s (the shipped folders)")
    args = parser.parse_args(argv)
    for family in args.family or sorted(WRITERS):
        folder = args.out / family
        stats = build(family, folder)
        size = sum(p.stat().st_size for p in (folder / "files").rglob("*") if p.is_file())
        print(f"{folder}/files: {stats['samples']} samples, {size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
