"""The bugfix loop's fault corpus: real broken variants of a generated tabular-classification project.

Each fault edits a freshly generated `demo_project` (logger=csv) so that its real 1-epoch run
fails the way it fails on a researcher's machine. Faults that need hardware this CPU machine
lacks are made real here: `trainer=gpu` asks Lightning for CUDA (it raises), the FP8
`transformer-engine` precision needs a package and a Hopper GPU, a per-batch device-memory guard
in the LightningModule raises torch's real `OutOfMemoryError` above a batch size, and a
DataLoader worker is killed by SIGBUS as with an exhausted /dev/shm.

`fixed_files` are the only files the fix may change (plus bugfix_report.md); `check` asserts the
fixed value. Used by tests/test_bugfix.py and benchmarks/bugfix_bench.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from validators.config_edit import ConfigEdit
from validators.project import Project

PACKAGE = "demo_project"
MODULE = f"src/{PACKAGE}/models/module.py"
TRAIN_YAML, TRAINER_CPU, DATA_MINI, LOGGER_CSV = (
    "configs/train.yaml", "configs/trainer/cpu.yaml", "configs/data/mini.yaml", "configs/logger/csv.yaml")


def replace(root: Path, rel: str, old: str, new: str) -> None:
    text = (root / rel).read_text(encoding="utf-8")
    if old not in text:
        raise AssertionError(f"{rel} has no {old!r}: the generated project changed")
    (root / rel).write_text(text.replace(old, new, 1), encoding="utf-8")


def value(root: Path, rel: str, *path: str) -> object:
    node = yaml.safe_load((root / rel).read_text(encoding="utf-8"))
    for key in path:
        node = node[key]
    return node


def oom_guard(limit: int, batch: int = 512) -> Callable[[Path], None]:
    def inject(root: Path) -> None:
        # the researcher's batch (not the default: the tabular MLP's is 2,048) on a device with room for `limit`
        ConfigEdit(Project(root)).set_key("data.batch_size", batch)
        replace(root, MODULE, "        x, y = batch\n", (
            "        x, y = batch\n"
            f"        if x.shape[0] > {limit}:  # fault: the device holds the activations of {limit} samples at most\n"
            "            raise torch.OutOfMemoryError(f\"CUDA out of memory. Tried to allocate {x.shape[0] * 48} MiB "
            f"(batch of {{x.shape[0]}}, {limit} fit)\")\n"))
    return inject


def worker_crash(root: Path) -> None:
    replace(root, DATA_MINI, "num_workers: 0 ", "num_workers: 2 ")
    common = f"src/{PACKAGE}/data/common.py"
    replace(root, common, "import csv\n", "import csv\nimport os\nimport signal\n")
    replace(root, common, "def make_loader(", (
        "def _shm_exhausted(worker_id: int) -> None:\n"
        "    os.kill(os.getpid(), signal.SIGBUS)  # fault: what a full /dev/shm does to a worker\n\n\n"
        "def make_loader("))
    replace(root, common, "        drop_last=False,\n", "        drop_last=False,\n        worker_init_fn=_shm_exhausted,\n")


CODE_BUG = ("        loss = self.loss_fn(out, y)\n", "        loss = self.loss_fn(out, y.float())\n")


def code_bug(root: Path) -> None:
    """A bug no catalog rule knows: class indices passed as float targets to the cross-entropy."""
    replace(root, MODULE, *CODE_BUG)


@dataclass(frozen=True)
class Fault:
    name: str
    rule: str                                  # the catalog rule that must fix it
    inject: Callable[[Path], None]
    fixed_files: tuple[str, ...]               # what the fix may change
    check: Callable[[Path], bool]              # the fixed value is right


FAULTS = [
    Fault("gpu_trainer_on_cpu_machine", "gpu_unavailable",
          lambda r: replace(r, TRAIN_YAML, "  trainer: cpu ", "  trainer: gpu "),
          (TRAIN_YAML,), lambda r: value(r, TRAIN_YAML, "defaults", "trainer") == "cpu"),
    Fault("gpu_accelerator_key", "gpu_unavailable",
          lambda r: replace(r, TRAINER_CPU, "accelerator: cpu ", "accelerator: gpu "),
          (TRAINER_CPU,), lambda r: value(r, TRAINER_CPU, "accelerator") == "cpu"),
    Fault("oom_batch_512_of_300", "out_of_memory", oom_guard(300), (DATA_MINI, TRAINER_CPU),
          lambda r: (value(r, DATA_MINI, "batch_size"), value(r, TRAINER_CPU, "accumulate_grad_batches")) == (256, 2)),
    Fault("oom_batch_512_of_200", "out_of_memory", oom_guard(200), (DATA_MINI, TRAINER_CPU),
          lambda r: (value(r, DATA_MINI, "batch_size"), value(r, TRAINER_CPU, "accumulate_grad_batches")) == (128, 4)),
    Fault("dataloader_worker_sigbus", "dataloader_worker", worker_crash, (DATA_MINI,),
          lambda r: value(r, DATA_MINI, "num_workers") == 0),
    Fault("nan_loss_lr_1e30", "nonfinite_loss", lambda r: replace(r, TRAIN_YAML, "  lr: 0.001 ", "  lr: 1.0e+30 "),
          (TRAIN_YAML, TRAINER_CPU),
          lambda r: (value(r, TRAIN_YAML, "optim", "lr"), value(r, TRAINER_CPU, "gradient_clip_val")) == (0.001, 1.0)),
    Fault("num_classes_3_for_2", "shape_mismatch", lambda r: replace(r, DATA_MINI, "num_classes: 2 ", "num_classes: 3 "),
          (DATA_MINI,), lambda r: value(r, DATA_MINI, "num_classes") == 2),
    Fault("missing_package_tabulate", "missing_package",
          lambda r: replace(r, f"src/{PACKAGE}/train.py", "import lightning as L\n",
                            "import lightning as L\nimport tabulate  # noqa: F401  (the researcher's new dependency)\n"),
          ("requirements-cpu.txt", "requirements-gpu.txt"),
          lambda r: all("\ntabulate==" in (r / f).read_text() for f in ("requirements-cpu.txt", "requirements-gpu.txt"))),
    Fault("misspelt_optim_key", "config_key", lambda r: replace(r, TRAIN_YAML, "  weight_decay:", "  wieght_decay:"),
          (TRAIN_YAML,), lambda r: value(r, TRAIN_YAML, "optim", "weight_decay") == 0.0001),
    Fault("misspelt_trainer_key", "config_key", lambda r: replace(r, TRAINER_CPU, "max_epochs:", "max_epoch:"),
          (TRAINER_CPU,), lambda r: value(r, TRAINER_CPU, "max_epochs") == 10),
    Fault("fp8_precision_without_hopper", "precision_unsupported",
          lambda r: replace(r, TRAINER_CPU, "precision: 32-true ", "precision: transformer-engine "),
          (TRAINER_CPU,), lambda r: value(r, TRAINER_CPU, "precision") == "32-true"),
    Fault("checkpoint_dir_unwritable", "unwritable_path",
          lambda r: replace(r, TRAIN_YAML, "  dirpath: checkpoints ", "  dirpath: /proc/hephaestus_ckpt "),
          (TRAIN_YAML,), lambda r: value(r, TRAIN_YAML, "checkpoint", "dirpath") == "checkpoints"),
    Fault("log_dir_under_a_file", "unwritable_path",
          lambda r: replace(r, LOGGER_CSV, "save_dir: . ", f"save_dir: {r / 'README.md'}/logs "),
          (LOGGER_CSV,), lambda r: value(r, LOGGER_CSV, "save_dir") == "."),
]
