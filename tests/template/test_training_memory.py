"""The generated training code's two memory economies, in the project's own code (rendered with the real
copier, run in a fresh interpreter from the project root):

- `keep_freed_memory` (on importing train.py): glibc keeps the pages a step frees, so allocating the
  same tensors again, step after step, page-faults no more;
- `FrozenHeap`: while `fit` trains, the objects that existed at its start are frozen out of Python's
  garbage collector (a full collection then walks only what training allocated); after `fit`, and after
  a failed one, nothing stays frozen.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ..helpers import render

CODE = """
import gc, json, resource, sys, tempfile
from pathlib import Path
import lightning as L
import torch
sys.path.insert(0, "src")
from loop_project.config import load_config
from loop_project.train import build, build_trainer, keep_freed_memory


def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


out = {"tuned": keep_freed_memory()}  # again: the import did it first
for mib in (4, 8, 20):  # a step's activations: allocated, freed, allocated again
    n = (mib << 20) // 4
    for _ in range(3):
        a, b = torch.ones(n), torch.ones(n)
        del a, b
    start = faults()
    for _ in range(20):
        a, b = torch.ones(n), torch.ones(n)
        del a, b
    out[f"faults_{mib}mib"] = (faults() - start) / 20


class Probe(L.Callback):
    def __init__(self):
        self.frozen = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.frozen.append(gc.get_freeze_count())


class Boom(L.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        raise RuntimeError("boom")


out["before"] = gc.get_freeze_count()
cfg = load_config(["logger=csv", "trainer.max_epochs=2", "trainer.limit_val_batches=0", "data.batch_size=32"])
datamodule, module = build(cfg)
trainer, _ = build_trainer(cfg, checkpointing=False, run_dir=Path(tempfile.mkdtemp()))
probe = Probe()
trainer.callbacks.append(probe)
trainer.fit(module, datamodule=datamodule)
out.update(steps=len(probe.frozen), frozen_min=min(probe.frozen), after=gc.get_freeze_count())

trainer, _ = build_trainer(cfg, checkpointing=False, run_dir=Path(tempfile.mkdtemp()))
trainer.callbacks.append(Boom())
try:
    trainer.fit(module, datamodule=datamodule)
except RuntimeError as err:
    out["error"] = str(err)
out["after_error"] = gc.get_freeze_count()

print("loop:", json.dumps(out))
"""


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    project = render(tmp_path_factory.mktemp("loop") / "loop_project", setup=False, project_name="loop_project",
                     task_family="tabular_regression", logger="csv")
    done = subprocess.run([sys.executable, "-c", CODE], cwd=project, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(next(x for x in done.stdout.splitlines() if x.startswith("loop: "))[len("loop: "):])


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's mallopt")
def test_the_pages_a_step_frees_stay_in_the_process(result):
    assert result["tuned"] is True
    assert (result["faults_4mib"], result["faults_8mib"], result["faults_20mib"]) == (0, 0, 0)


def test_the_heap_is_frozen_while_fit_trains_and_handed_back_after(result):
    assert result["before"] == 0 and result["steps"] >= 4
    assert result["frozen_min"] > 10_000  # torch, Lightning and the data module: far more than training allocates
    assert result["after"] == 0


def test_a_failed_fit_unfreezes_the_heap(result):
    assert result["error"] == "boom" and result["after_error"] == 0

