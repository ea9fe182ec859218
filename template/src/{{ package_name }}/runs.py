"""Run folders: every training run writes into its own `<run.root>/<UTC timestamp>-<name>/`.

    runs/20261125T231500Z-small_cnn/   config.yaml, checkpoints/, csv/metrics.csv, wandb/, summary.json
    runs/latest -> 20261125T231500Z-small_cnn   (relative link, moved after each successful run)

    from .runs import latest_checkpoint, link_latest, new_run_dir
    run_dir = new_run_dir(cfg)          # created by global rank 0; exported as $HEPHAESTUS_RUN_DIR
    link_latest(run_dir)                # after the run succeeded
    latest_checkpoint()                 # runs/latest/checkpoints/last.ckpt, or a CheckpointError

$HEPHAESTUS_RUN_DIR, when set, is the folder to use (relative to the project root, or absolute):
DDP processes that Lightning starts by re-running the script inherit it from the main process, and a
launch script can export it before `srun` so that every task writes into one folder.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import CheckpointError

if TYPE_CHECKING:  # the inference image imports this module without omegaconf's help
    from omegaconf import DictConfig

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RUNS_ROOT = PROJECT_ROOT / "runs"  # the default of `run.root` in configs/train.yaml
RUN_DIR_ENV = "HEPHAESTUS_RUN_DIR"
LATEST = "latest"
SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")  # run.name: a folder-name suffix, checked in config.py
TRAIN_HINT = "no run yet: python scripts/train.py --epochs 1"


def project_path(path: str | Path) -> Path:
    """`path` made absolute: a relative path is relative to the project root, not to the current folder."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def display_path(path: str | Path | None) -> str | None:
    """`path` relative to the project root when it lies inside it (as summary.json records paths), else absolute."""
    if not path:
        return None
    path = Path(path)
    try:
        return path.relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return str(path)


def is_global_zero() -> bool:
    """Global rank 0 before Lightning starts, read from what the launchers set (torchrun, srun, Lightning's DDP)."""
    for var in ("RANK", "SLURM_PROCID"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var]) == 0
    return all(int(os.environ.get(var, "0") or 0) == 0 for var in ("NODE_RANK", "GROUP_RANK", "LOCAL_RANK"))


def new_run_dir(cfg: DictConfig) -> Path:
    """The folder of this run: $HEPHAESTUS_RUN_DIR when set, else a new `<root>/<timestamp>-<name>[-N]`.

    Only global rank 0 creates it (another rank gets the path; Lightning broadcasts checkpoint paths
    from rank 0). The main process exports the folder as $HEPHAESTUS_RUN_DIR for its DDP subprocesses.
    """
    given = os.environ.get(RUN_DIR_ENV)
    if given:
        run_dir = project_path(given)
        if is_global_zero():
            run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir
    root = project_path(cfg.run.root)
    base = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{cfg.run.name or cfg.model.name}"
    if not is_global_zero():
        return root / base
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        run_dir = root / (base if n == 1 else f"{base}-{n}")
        try:
            run_dir.mkdir(exist_ok=False)  # two runs started in the same second never share a folder
        except FileExistsError:
            continue
        os.environ[RUN_DIR_ENV] = str(run_dir)
        return run_dir
    raise FileExistsError(f"{root / base}: 9999 runs with this name in one second")


def link_latest(run_dir: Path) -> Path:
    """Point `<root>/latest` at `run_dir` with a relative link, replaced atomically; returns the link."""
    link = run_dir.parent / LATEST
    tmp = run_dir.parent / f".{LATEST}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    try:
        tmp.symlink_to(run_dir.name, target_is_directory=True)
    except OSError:  # no symlinks (Windows without developer mode): a file holding the folder name
        tmp.write_text(run_dir.name + "\n", encoding="utf-8")
    os.replace(tmp, link)
    return link


def latest_run(root: str | Path = RUNS_ROOT) -> Path:
    """The folder `<root>/latest` names (a link, or a file holding the folder name)."""
    link = project_path(root) / LATEST
    if link.is_file():
        return link.parent / link.read_text(encoding="utf-8").strip()
    return link


def latest_checkpoint(root: str | Path = RUNS_ROOT) -> Path:
    """`<root>/latest/checkpoints/last.ckpt` resolved through the link; a CheckpointError when there is none."""
    path = latest_run(root) / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise CheckpointError(path=display_path(path) or str(path), problem=f"no such checkpoint ({TRAIN_HINT})")
    return path.resolve()
