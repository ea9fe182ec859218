"""D1 end to end: real 1-epoch training runs of a generated project, read back from the run's own files.

The offline W&B run (`runs/<run>/wandb/offline-run-*/run-<id>.wandb`, decoded with wandb's own record
protobuf) holds the resolved run config, equal to the run folder's config.yaml and to `--print-config`;
its history rows are the steps the CSV logger wrote beside it; it is the only offline run, also under
DDP with 2 gloo processes, where only rank 0 logs. Nothing in the environment says offline: the run
sets WANDB_MODE itself. Then gate D1 passes on the project.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from validators.tracking import records

from ..helpers import render

pytestmark = pytest.mark.e2e
LIGHTNING_HPARAMS = ("config", "model_kwargs")  # TaskModule.save_hyperparameters(), logged by Lightning as well


def run(project: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_") and k != "VIRTUAL_ENV"}
    done = subprocess.run([sys.executable, *args], cwd=project, env=env, capture_output=True, text=True, timeout=600)
    out = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{out[-5000:]}"
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return render(tmp_path_factory.mktemp("d1") / "demo_project", setup=False, task_family="tabular_regression",
                  logger="wandb")


def train(project: Path, *overrides: str) -> tuple[Path, str]:
    """One real run; its folder (runs/latest) and what it printed."""
    out = run(project, "scripts/train.py", "--epochs", "1", *overrides)
    return (project / "runs/latest").resolve(), out


def csv_steps(run_dir: Path) -> list[tuple[int, dict[str, float]]]:
    with (run_dir / "csv/metrics.csv").open(newline="") as f:
        return [(int(row.pop("step")), {k: float(v) for k, v in row.items() if v != ""}) for row in csv.DictReader(f)]


def history_steps(log: records.RunLog) -> list[tuple[int, dict[str, float]]]:
    return [(int(row["trainer/global_step"]), {k: float(v) for k, v in row.items()
                                               if not k.startswith("_") and k != "trainer/global_step"})
            for row in log.history]


def offline_run(project: Path, run_dir: Path) -> records.RunLog:
    """The one offline run anywhere in the project: in this run's folder."""
    found = sorted(p for p in project.rglob("offline-run-*") if "latest" not in p.parts)
    assert [p.parent.parent for p in found] == [run_dir]
    return records.read(records.run_file(found[0]), keep_history=True)


def check_recorded(project: Path, run_dir: Path, log: records.RunLog, *overrides: str) -> dict:
    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    printed = yaml.safe_load(run(project, "scripts/train.py", "--epochs", "1", *overrides, "--print-config"))
    assert resolved == printed
    recorded = {k: v for k, v in log.config.items() if k not in ("_wandb", *LIGHTNING_HPARAMS)}
    assert recorded == resolved
    assert log.config["config"] == resolved  # the module's hyperparameters: the same config
    assert (log.exited, log.exit_code, log.intact, log.project) == (True, 0, True, "demo_project")
    assert history_steps(log) == csv_steps(run_dir) and log.history_rows == 3  # val, train epoch, test
    return resolved


def test_a_run_records_its_resolved_config_offline_beside_its_csv_logs(project):
    run_dir, out = train(project, "optim.lr=0.002")
    log = offline_run(project, run_dir)
    resolved = check_recorded(project, run_dir, log, "optim.lr=0.002")
    assert resolved["optim"]["lr"] == 0.002 and resolved["logger"]["offline"] is True
    assert "W&B syncing is set to `offline`" in out and "wandb: WARNING" not in out


def test_under_ddp_only_rank_zero_writes_an_offline_run_and_it_has_the_config(project):
    shutil.rmtree(project / "runs")  # the previous test's run: this one must be the only offline run
    run_dir, out = train(project, "trainer=ddp_cpu")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["world_size"] == 2
    log = offline_run(project, run_dir)
    resolved = check_recorded(project, run_dir, log, "trainer=ddp_cpu")
    assert (resolved["trainer"]["strategy"], resolved["trainer"]["devices"]) == ("ddp", 2)
    assert out.count("W&B syncing is set to `offline`") == 1


def test_gate_d1_passes_on_the_trained_project(project):
    assert run(project, "-m", "validators", "check", "--stages", "D1") == "stages D1: all gates pass\n"
