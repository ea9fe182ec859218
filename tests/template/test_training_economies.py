"""The generated training loop's economies, in the project's own code (rendered with the real copier, run
in a fresh interpreter from the project root):

- `keep_freed_memory` (on importing train.py): glibc keeps the pages a step frees, so allocating the
  same tensors again, step after step, page-faults no more;
- `FrozenHeap`: while `fit` trains, the objects that existed at its start are frozen out of Python's
  garbage collector (a full collection then walks only what training allocated); after `fit`, and after
  a failed one, nothing stays frozen;
- `TaskModule.__setattr__`: the hook name Lightning sets ~46 times a step skips `nn.Module.__setattr__`,
  and Lightning still reads the right name in each hook.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ..helpers import render

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads glibc's malloc statistics")

CODE = """
import ctypes, ctypes.util, gc, json, sys, tempfile
from pathlib import Path
import lightning as L
import torch
sys.path.insert(0, "src")


class MallInfo2(ctypes.Structure):  # glibc's struct mallinfo2 (<malloc.h>)
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


mallinfo2 = ctypes.CDLL(ctypes.util.find_library("c")).mallinfo2
mallinfo2.restype = MallInfo2
MIB = 2**20


def allocate(mib):
    \"\"\"MiB of a `mib`-MiB tensor served by mmap(), and MiB the heap kept after freeing it.\"\"\"
    before = mallinfo2()
    x = torch.ones(mib * MIB // 4)
    during = mallinfo2()
    del x
    return round((during.hblkhd - before.hblkhd) / MIB), round((mallinfo2().arena - before.arena) / MIB)


out = {"default": allocate(20)}  # glibc's defaults: mmap() pages, handed back on free
from loop_project.config import load_config
from loop_project.train import build, build_trainer, keep_freed_memory

out["tuned"] = allocate(24)  # the import tuned it: from the heap, kept there
out["again"] = keep_freed_memory()


class Probe(L.Callback):
    def __init__(self):
        self.frozen, self.hooks = [], set()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.frozen.append(gc.get_freeze_count())
        self.hooks.add(pl_module._current_fx_name)


SETATTR = {}
module_setattr = torch.nn.Module.__setattr__


def counting_setattr(self, name, value):
    SETATTR[name] = SETATTR.get(name, 0) + 1
    module_setattr(self, name, value)


class Boom(L.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        raise RuntimeError("boom")


out["before"] = gc.get_freeze_count()
cfg = load_config(["logger=csv", "trainer.max_epochs=2", "trainer.limit_val_batches=0", "data.batch_size=32"])
datamodule, module = build(cfg)
trainer, _ = build_trainer(cfg, checkpointing=False, run_dir=Path(tempfile.mkdtemp()))
probe = Probe()
trainer.callbacks.append(probe)
torch.nn.Module.__setattr__ = counting_setattr
trainer.fit(module, datamodule=datamodule)
torch.nn.Module.__setattr__ = module_setattr
out.update(steps=len(probe.frozen), frozen_min=min(probe.frozen), after=gc.get_freeze_count(),
           hooks=sorted(probe.hooks), fx_setattr=SETATTR.get("_current_fx_name", 0),
           fx_after=module._current_fx_name, module_setattr=sum(SETATTR.values()))

trainer, _ = build_trainer(cfg, checkpointing=False, run_dir=Path(tempfile.mkdtemp()))
trainer.callbacks.append(Boom())
try:
    trainer.fit(module, datamodule=datamodule)
except RuntimeError as err:
    out["error"] = str(err)
out["after_error"] = gc.get_freeze_count()

print("\\nloop:", json.dumps(out))  # a line of its own: the progress bar leaves its line open
"""


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    project = render(tmp_path_factory.mktemp("loop") / "loop_project", setup=False, project_name="loop_project",
                     task_family="tabular_regression", logger="csv")
    done = subprocess.run([sys.executable, "-c", CODE], cwd=project, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(next(x for x in done.stdout.splitlines() if x.startswith("loop: "))[len("loop: "):])


def test_the_pages_a_step_frees_stay_in_the_process(result):
    assert result["default"] == [20, 0]  # before train.py is imported: mmap()ed, and handed back when freed
    assert result["tuned"][0] == 0 and result["tuned"][1] >= 24  # after: from the heap, which keeps it
    assert result["again"] is True


def test_the_heap_is_frozen_while_fit_trains_and_handed_back_after(result):
    assert result["before"] == 0 and result["steps"] >= 4
    assert result["frozen_min"] > 10_000  # torch, Lightning and the data module: far more than training allocates
    assert result["after"] == 0


def test_a_failed_fit_unfreezes_the_heap(result):
    assert result["error"] == "boom" and result["after_error"] == 0



def test_the_hook_name_skips_module_setattr_and_lightning_still_reads_it(result):
    assert result["fx_setattr"] == 0  # Lightning sets it ~46 times a step: none of them went through nn.Module
    assert result["module_setattr"] > 0  # the counter worked: fit set other attributes the usual way
    assert result["hooks"] == ["on_train_batch_end"] and result["fx_after"] is None
