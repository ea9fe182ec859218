"""`fetch-data`: the catalog's full dataset (configs/hub.yaml `dataset`) from the hub's parquet files into data/full/,
in exactly the on-disk format the project's data module reads with `data=full`, and data/full/manifest.yaml.

    python -m validators fetch-data [--val-fraction 0.1] [--seed 42] [--force]   # nox -s fetch_data adds pyarrow

Layouts (configs/data/full.yaml):
- image: data/full/images/<class>/<split>-<row>.png and data/full/split.csv (path,label,split); the hub's PNG bytes
  are written as they are (other formats are converted to PNG with Pillow);
- text: data/full/train.csv, val.csv, test.csv with columns text,label (rows without a label are left out).
Class names come from the parquet files' `huggingface` metadata (ClassLabel names: "0".."9" for MNIST, "neg"/"pos"
for IMDB), else the label itself. The splits come from the file names (<split>-00000-of-00001.parquet); the hub's
`validation` split is val when there is one, else val is `--val-fraction` of train, drawn by random.Random(seed).sample
(train keeps the rest, order unchanged); test is the hub's test split. Other splits (IMDB's unsupervised) are skipped.
The dataset is written into data/.full.partial/ and swapped in at the end; data/full/ holding files that no fetch-data
wrote is refused (--force replaces it).
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import weights
from ..artifacts import FULL_DATA
from ..errors import DependencyError, GateError, HubError
from ..project import Project
from . import PARQUET_READER
from .client import Hub, RemoteFile
from .models import install
from .sources import Source

SPLITS = {"train": "train", "validation": "val", "valid": "val", "val": "val", "test": "test"}
PNG, SUFFIX = b"\x89PNG\r\n\x1a\n", "png"  # the images' signature and file suffix


@dataclass
class Split:
    """One split's rows as (payload, class name): image bytes or a text."""

    rows: list[tuple[Any, str]]
    dropped: int = 0


def parquet_module() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError as err:
        raise DependencyError("pyarrow", "reading the hub's parquet files", f"nox -s fetch_data adds {PARQUET_READER} for "
                              f"the command (or: uv run --with {PARQUET_READER} python -m validators fetch-data)") from err
    return pq


def parquet_rows(path: Path, layout: str) -> tuple[list[tuple[Any, str]], int]:
    """(rows, rows without a label) of one parquet file: the image or text column, and the class name."""
    table = parquet_module().read_table(path)
    meta = (table.schema.metadata or {}).get(b"huggingface")
    features = json.loads(meta).get("info", {}).get("features", {}) if meta else {}
    kind = "Image" if layout == "image" else "Value"
    payload = next((c for c, f in features.items() if f.get("_type") == kind and (kind == "Image" or f.get("dtype") == "string")),
                   "image" if layout == "image" else "text")
    label = next((c for c, f in features.items() if f.get("_type") == "ClassLabel"), "label")
    names = features.get(label, {}).get("names")
    if payload not in table.column_names or label not in table.column_names:
        raise HubError(f"{path.name}: columns {table.column_names}, expected a {payload!r} and a {label!r} column",
                       f"configs/hub.yaml's dataset must be a {layout} classification dataset")
    rows, dropped = [], 0
    for value, y in zip(table.column(payload).to_pylist(), table.column(label).to_pylist(), strict=True):
        if y is None or isinstance(y, int) and y < 0:
            dropped += 1
            continue
        data = value.get("bytes") if isinstance(value, dict) else value
        rows.append((data, str(names[y]) if names and isinstance(y, int) else str(y)))
    return rows, dropped


def split_of(path: str) -> str | None:
    """'train' from '<config>/train-00000-of-00001.parquet'; None for a split the data module has no use for."""
    return SPLITS.get(Path(path).name.split("-")[0].split(".")[0])


def carve(train: list[tuple[Any, str]], fraction: float, seed: int) -> tuple[list[tuple[Any, str]], list[tuple[Any, str]]]:
    """(train, val): `fraction` of the rows, drawn by random.Random(seed).sample; both keep the original order."""
    chosen = set(random.Random(seed).sample(range(len(train)), round(len(train) * fraction)))
    return [r for i, r in enumerate(train) if i not in chosen], [r for i, r in enumerate(train) if i in chosen]


def write_image(out: Path, splits: dict[str, list[tuple[Any, str]]]) -> None:
    rows = []
    for split, part in splits.items():
        for i, (data, name) in enumerate(part):
            label = re.sub(r"[^\w.-]", "_", name).lstrip(".") or "_"  # a folder name, never a path
            rel = f"images/{label}/{split}-{i:05d}.{SUFFIX}"
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_bytes(data if data[:8] == PNG else to_png(data))
            rows.append({"path": rel, "label": label, "split": split})
    with (out / "split.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, ["path", "label", "split"])
        writer.writeheader()
        writer.writerows(rows)


def to_png(data: bytes) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    with Image.open(io.BytesIO(data)) as img:
        img.save(buffer, format="PNG")
    return buffer.getvalue()


def write_text(out: Path, splits: dict[str, list[tuple[Any, str]]]) -> None:
    for split, part in splits.items():
        with (out / f"{split}.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows(part)


def check_target(project: Project, force: bool) -> None:
    """Refuse to replace a data/full/ that no fetch-data wrote (the researcher's own data), unless forced."""
    target = project.path(FULL_DATA)
    if force or not target.exists() or not any(target.iterdir()):
        return
    try:
        if weights.read_data(target) is not None:
            return
    except GateError:
        pass
    found = sorted(p.name for p in target.iterdir())
    raise HubError(f"{FULL_DATA.path}/ holds files nox -s fetch_data did not write ({', '.join(found[:3])}"
                   f"{' ...' if len(found) > 3 else ''}; no manifest.yaml of it)", "move them away, or --force replaces them")


def fetch_dataset(project: Project, hub: Hub, source: Source, *, val_fraction: float, seed: int, force: bool = False,
                  report: Callable[[str], None] = print) -> weights.Fetch:
    check_target(project, force)
    parquet_module()  # before anything is downloaded
    commit = hub.resolve(source.repo, source.revision, "dataset")
    listed = [f for f in hub.tree(source.repo, commit, "dataset") if f.path.endswith(".parquet")]
    folders = sorted({str(Path(f.path).parent) for f in listed})
    if source.config:
        listed = [f for f in listed if Path(f.path).parent.name == source.config]
    elif len(folders) > 1:
        raise HubError(f"{source.repo} has parquet files for several configurations ({', '.join(folders)})",
                       "name one: dataset.config in configs/hub.yaml")
    wanted = [f for f in listed if split_of(f.path)]
    found = {split_of(f.path) for f in wanted}
    if not {"train", "test"} <= found:
        raise HubError(f"{source.repo}@{commit[:12]}: parquet splits {sorted(found) or 'none'}, expected train and test",
                       "set a dataset with train and test splits in configs/hub.yaml")
    skipped = sorted(f.path for f in listed if not split_of(f.path))
    report(f"{source.repo}@{source.revision} -> commit {commit[:12]}: {len(wanted)} parquet files"
           + (f" (skipped: {', '.join(skipped)})" if skipped else ""))
    target = project.path(FULL_DATA)
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        fetched, by_split, dropped = build(hub, source, commit, wanted, partial, val_fraction, seed, report)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    install(partial, target)
    counts = ", ".join(f"{name} {len(rows):,}" for name, rows in by_split.items())
    report(f"{FULL_DATA.path}/: {counts} rows ({len(fetched.written):,} files, {sum(r.bytes for r in fetched.written.values()):,} "
           f"bytes" + (f"; {dropped} rows without a label left out" if dropped else "") + f"); val: {fetched.val}")
    return fetched


def build(hub: Hub, source: Source, commit: str, wanted: list[RemoteFile], partial: Path,
          val_fraction: float, seed: int, report: Callable[[str], None]) -> tuple[weights.Fetch, dict[str, list], int]:
    """Download the parquet files, write the layout and its manifest into `partial`: (the record, rows by split, dropped)."""
    files: dict[str, weights.FileRecord] = {}
    splits: dict[str, Split] = {}
    width = max(len(f.path) for f in wanted)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=partial.parent) as tmp:
        for remote in wanted:
            began = time.perf_counter()
            path, files[remote.path] = hub.download(source.repo, commit, remote, Path(tmp), "dataset")
            report(f"  {remote.path:<{width}}  {remote.size:>14,} bytes  {time.perf_counter() - began:7.2f} s")
            rows, dropped = parquet_rows(path, source.layout)
            part = splits.setdefault(split_of(remote.path) or "", Split([]))
            part.rows += rows
            part.dropped += dropped
    if "val" in splits:
        val_note = f"the hub's validation split ({len(splits['val'].rows):,} rows)"
        train, val = splits["train"].rows, splits["val"].rows
    else:
        train, val = carve(splits["train"].rows, val_fraction, seed)
        val_note = (f"{val_fraction:g} of the hub's train split ({len(val):,} of {len(splits['train'].rows):,} rows), "
                    f"drawn by random.Random({seed}).sample; train keeps the rest")
    by_split = {"train": train, "val": val, "test": splits["test"].rows}
    (write_image if source.layout == "image" else write_text)(partial, by_split)
    written = {p.relative_to(partial).as_posix(): weights.record_of(p) for p in sorted(partial.rglob("*")) if p.is_file()}
    fetched = weights.Fetch(source.repo, source.revision, commit, hub.endpoint, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            files, written, val_note)
    weights.write_data(partial, fetched)
    return fetched, by_split, sum(s.dropped for s in splits.values())
