"""D1 in a generated project's own training code, without training: `build_loggers` on global rank 0
starts the offline W&B run with the resolved config before WandbLogger attaches to it; on another rank it
starts nothing (wandb is not even imported). Each case runs in its own interpreter, as a DDP rank does:
Lightning reads the rank from the environment when it is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from validators.tracking import records

from ..helpers import render

BUILD = """
import json, os, sys
sys.path.insert(0, "src")
from pathlib import Path
from demo_project.config import load_config
from demo_project.train import build_loggers
out = []
for n, overrides in enumerate(json.loads(sys.argv[1])):
    loggers = build_loggers(load_config(overrides), Path("runs") / f"r{n}")
    wb = loggers[1]
    run = wb.experiment
    out.append({"loggers": [type(x).__name__ for x in loggers], "wandb_imported": "wandb" in sys.modules,
                "experiment": type(run).__name__, "mode": getattr(getattr(run, "settings", None), "mode", None),
                "log_model": wb._log_model, "env": os.environ.get("WANDB_MODE")})
print("loggers:", json.dumps(out), flush=True)  # before wandb's own exit lines
if "wandb" in sys.modules:
    sys.modules["wandb"].finish()  # as Lightning's teardown does; not left to the interpreter's exit
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return render(tmp_path_factory.mktemp("d1") / "demo_project", setup=False, task_family="tabular_regression",
                  logger="wandb")


def build(project: Path, runs: list[list[str]], **env: str) -> list[dict]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_") and k not in ("RANK", "LOCAL_RANK", "SLURM_PROCID")}
    done = subprocess.run([sys.executable, "-c", BUILD, json.dumps(runs)], cwd=project, env={**environ, **env},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(next(x for x in done.stdout.splitlines() if x.startswith("loggers: "))[len("loggers: "):])


def test_another_rank_starts_no_w_and_b_run_and_imports_no_wandb(project):
    assert build(project, [[]], LOCAL_RANK="1") == [
        {"loggers": ["CSVLogger", "WandbLogger"], "wandb_imported": False, "experiment": "_DummyExperiment", "mode": None,
         "log_model": False, "env": None}]
    assert not (project / "runs/r0/wandb").exists()


def test_rank_zero_records_the_resolved_config_offline_and_the_run_sets_wandb_mode_itself(project):
    shown = build(project, [[], ["logger.offline=false", "optim.lr=0.01"]], SLURM_PROCID="0", WANDB_MODE="offline")
    # the second run: logger.offline false follows the job's WANDB_MODE=offline; it finishes the first run
    assert shown == [{"loggers": ["CSVLogger", "WandbLogger"], "wandb_imported": True, "experiment": "Run",
                      "mode": "offline", "log_model": False, "env": "offline"}] * 2
    for n, overrides in enumerate([[], ["logger.offline=false", "optim.lr=0.01"]]):
        folders = list((project / f"runs/r{n}/wandb").glob("offline-run-*"))
        assert len(folders) == 1
        log = records.read(records.run_file(folders[0]))
        printed = subprocess.run([sys.executable, "scripts/train.py", *overrides, "--print-config"], cwd=project,
                                 capture_output=True, text=True, check=True).stdout
        assert log.config == {"_wandb": {}, **yaml.safe_load(printed)}
        assert (log.exited, log.project) == (True, "demo_project")


def test_the_run_itself_sets_wandb_mode_offline(project):
    (shown,) = build(project, [[]])  # nothing in the environment says offline
    assert (shown["mode"], shown["env"]) == ("offline", "offline")
