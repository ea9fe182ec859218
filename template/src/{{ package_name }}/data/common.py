"""Helpers shared by the data modules: CSV reading with clear errors, and DataLoader settings."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import lightning as L
from torch.utils.data import DataLoader, Dataset

from ..errors import DataError


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DataError(
            path=str(path),
            problem=f"{what} not found",
            hint="data/mini/ is written at generation; put the full dataset under data/full/ and run with data=full",
        )
    return path


def read_csv(path: Path, required: list[str]) -> list[dict[str, str]]:
    """Rows of a UTF-8 CSV as dicts; every column in `required` must be in the header."""
    with require_file(path, "CSV file").open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in required if c not in header]
        if missing:
            raise DataError(path=str(path), problem=f"missing column(s) {missing}; header is {header}",
                            hint="set the column names in configs/data/*.yaml")
        rows = list(reader)
    if not rows:
        raise DataError(path=str(path), problem="has a header but no rows")
    return rows


def make_loader(dataset: Dataset, *, batch_size: int, num_workers: int, shuffle: bool, pin_memory: bool = False) -> DataLoader:
    """One DataLoader policy for every split: workers persist between epochs when there are any; batches are
    pinned (page-locked, so the copy to the GPU can overlap compute) when the Trainer runs on CUDA."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=pin_memory,
        drop_last=False,
    )


def check_labels(labels: list[str], classes: list[str], num_classes: int, path: Path) -> None:
    """The configured class count must match the classes found in the training data."""
    if len(classes) != num_classes:
        raise DataError(
            path=str(path),
            problem=f"data.num_classes is {num_classes} but the training split has {len(classes)} classes {classes}",
            hint=f"set data.num_classes={len(classes)}",
        )
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise DataError(path=str(path), problem=f"labels {unknown} do not occur in the training split",
                        hint="every class needs training examples")


class SplitDataModule(L.LightningDataModule):
    """Train/val/test splits built once by `build_splits`, served with one loader policy.

    Subclasses set `self.preprocessor` (fitted on the training split only) in `build_splits`
    and say which sizes the model needs in `model_kwargs`. `model` is the run's model config
    (cfg.model), for a family whose preprocessing depends on the model (a pretrained text encoder's tokenizer).
    """

    def __init__(self, cfg: Any, model: Any = None):
        super().__init__()
        self.cfg = cfg
        self.model_cfg = model
        self.root = Path(cfg.root)
        self.preprocessor: Any = None
        self.splits: dict[str, Dataset] = {}

    def build_splits(self) -> dict[str, Dataset]:
        raise NotImplementedError

    def model_kwargs(self) -> dict[str, int]:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if not self.splits:  # Lightning calls setup per stage; build once
            self.splits = self.build_splits()

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        on_cuda = self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"
        return make_loader(self.splits[split], batch_size=self.cfg.batch_size,
                           num_workers=self.cfg.num_workers, shuffle=shuffle, pin_memory=on_cuda)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
