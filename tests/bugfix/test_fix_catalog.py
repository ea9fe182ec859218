"""Fast tests of the bugfix loop's parts: config edits, the catalog's detectors, diffs, the tree checkpoint."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from validators.bugfix.checkpoint import TreeCheckpoint
from validators.bugfix.fixes import CATALOG, Context, Failure, diagnose, fix_oom
from validators.bugfix.patch import apply, check_paths, parse
from validators.config_edit import ConfigEdit
from validators.errors import DependencyError, PatchError
from validators.llm import require_litellm
from validators.project import Project

TRAIN = """defaults:
  data: mini                     # configs/data/
  trainer: cpu                   # configs/trainer/
optim:
  lr: 0.001                      # AdamW learning rate
  weight_decay: 0.0001           # AdamW decoupled weight decay
checkpoint:
  dirpath: checkpoints           # where .ckpt files go
"""
TRAINER = "accelerator: cpu                 # lightning accelerator\naccumulate_grad_batches: 1       # sum gradients\n"
DATA = "root: data/mini                  # folder\nbatch_size: 512                  # per process\nnum_workers: 0\n"


@pytest.fixture
def root(tmp_path) -> Path:
    for rel, text in {"configs/train.yaml": TRAIN, "configs/trainer/cpu.yaml": TRAINER, "configs/trainer/gpu.yaml": TRAINER,
                      "configs/data/mini.yaml": DATA, "src/pkg/module.py": "a = 1\nb = 2\nc = 3\n"}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def failure(text: str) -> Failure:
    return Failure(output=text, error=text.splitlines()[-1], returncode=1)


def test_config_edits_keep_comments_and_find_the_deciding_file(root):
    edit = ConfigEdit(Project(root))
    assert (edit.source_of("optim.lr"), edit.source_of("data.batch_size"), edit.source_of("trainer.precision")) == (
        Path("configs/train.yaml"), Path("configs/data/mini.yaml"), Path("configs/trainer/cpu.yaml"))
    edit.set_key("optim.lr", 0.0001)
    edit.set_key("data.batch_size", 256)
    edit.set_key("trainer.gradient_clip_val", 1.0)
    assert "  lr: 0.0001                     # AdamW learning rate\n" in (root / "configs/train.yaml").read_text()
    assert "batch_size: 256                  # per process\n" in (root / "configs/data/mini.yaml").read_text()
    assert (root / "configs/trainer/cpu.yaml").read_text().endswith("gradient_clip_val: 1.0  # set by the bugfix loop\n")
    edit.rename_key(Path("configs/train.yaml"), ["optim", "weight_decay"], "wd")
    assert "  wd: 0.0001           # AdamW decoupled weight decay\n" in (root / "configs/train.yaml").read_text()
    assert edit.value("optim.lr") == 0.0001 and edit.value("data.num_workers") == 0


DETECTED = {  # error text (as the run prints it) -> the rule that must claim it first
    "lightning.fabric.utilities.exceptions.MisconfigurationException: No supported gpu backend found!": "gpu_unavailable",
    "ModuleNotFoundError: Requirement 'transformer_engine>=0.11.0' not met.": "precision_unsupported",
    "RuntimeError: Current CUDA Device does not support bfloat16. Please switch dtype to float16.": "precision_unsupported",
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB": "out_of_memory",
    "RuntimeError: [enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried to allocate 1": "out_of_memory",
    "RuntimeError: DataLoader worker (pid 4242) is killed by signal: Bus error. It is possible that dataloader's workers are out of shared memory.": "dataloader_worker",
    "RuntimeError: DataLoader worker (pid(s) 4242, 4243) exited unexpectedly": "dataloader_worker",
    "non-finite metric test/loss = nan": "nonfinite_loss",
    "error: data/mini/train.csv: data.num_classes is 3 but the training split has 2 classes ['a', 'b'] (hint: set data.num_classes=2)": "shape_mismatch",
    "RuntimeError: mat1 and mat2 shapes cannot be multiplied (64x30 and 10x128)": "shape_mismatch",
    "ModuleNotFoundError: No module named 'tabulate'": "missing_package",
    "error: /p/configs/train.yaml: optim.wieght_decay: is not a known key (hint: did you mean 'optim.weight_decay'?)": "config_key",
    "error: configs/ or <command line>: optim.scheduler: 'cosin' is not one of cosine, none (hint: did you mean 'cosine'?)": "config_key",
    "NotADirectoryError: [Errno 20] Not a directory: '/p/README.md/logs'": "unwritable_path",
    "PermissionError: [Errno 13] Permission denied: '/data/ckpt'": "unwritable_path",
}


@pytest.mark.parametrize("text", list(DETECTED))
def test_each_error_is_claimed_by_its_rule_first(text):
    assert diagnose(failure(text))[0][0].name == DETECTED[text]


def test_every_catalog_rule_is_exercised_and_unknown_errors_match_nothing():
    assert {rule.name for rule in CATALOG} == set(DETECTED.values())
    assert diagnose(failure("TypeError: forward() takes 2 positional arguments but 3 were given")) == []


def test_config_key_fix_renames_in_the_named_file(root):
    (root / "configs/train.yaml").write_text(TRAIN.replace("weight_decay", "wieght_decay"))
    text = f"error: {root}/configs/train.yaml: optim.wieght_decay: is not a known key (hint: did you mean 'optim.weight_decay'?)"
    rule, found = diagnose(failure(text))[0]
    assert rule.fix(Context(Project(root), sys.executable), found) == (
        "configs/train.yaml: renamed key 'optim.wieght_decay' to 'optim.weight_decay' (the nearest valid key)")
    assert (root / "configs/train.yaml").read_text() == TRAIN


def test_oom_fix_halves_the_batch_and_keeps_the_effective_batch(root):
    ctx = Context(Project(root), sys.executable)
    assert fix_oom(ctx, {}) == ("configs/data/mini.yaml: data.batch_size: 512 -> 256; configs/trainer/cpu.yaml: "
                                "trainer.accumulate_grad_batches: 1 -> 2 (effective batch 512 kept)")
    (root / "configs/data/mini.yaml").write_text(DATA.replace("512", "1"))
    assert fix_oom(ctx, {}) is None  # nothing left to halve


def test_gpu_fix_switches_the_trainer_group_to_cpu(root):
    (root / "configs/train.yaml").write_text(TRAIN.replace("trainer: cpu", "trainer: gpu"))
    (root / "configs/trainer/gpu.yaml").write_text(TRAINER.replace("cpu", "gpu"))
    rule, found = diagnose(failure("MisconfigurationException: No supported gpu backend found!"))[0]
    assert rule.fix(Context(Project(root), sys.executable), found) == (
        "configs/train.yaml: defaults.trainer: 'gpu' -> 'cpu' (no CUDA GPU on this machine)")
    assert (root / "configs/train.yaml").read_text() == TRAIN


def test_diff_is_parsed_confined_and_applied_strictly(root):
    good = "--- a/src/pkg/module.py\n+++ b/src/pkg/module.py\n@@ -1,3 +1,3 @@\n a = 1\n-b = 2\n+b = 20\n c = 3\n"
    patches = parse(f"Here is the fix:\n```diff\n{good}```\n")
    check_paths(Project(root), patches)
    assert apply(Project(root), patches) == ["src/pkg/module.py"]
    assert (root / "src/pkg/module.py").read_text() == "a = 1\nb = 20\nc = 3\n"
    with pytest.raises(PatchError, match=r"^the diff does not apply: hunk at line 1 of src/pkg/module.py does not match the file$"):
        apply(Project(root), parse(good))
    for path, message in (("../x.py", "outside the project"), ("/etc/hosts", "outside the project"),
                          (".git/config", "not one of the project's files"), ("data/mini/train.csv", "not one of")):
        with pytest.raises(PatchError, match=message):
            check_paths(Project(root), parse(good.replace("src/pkg/module.py", path)))
    with pytest.raises(PatchError, match="holds no unified diff"):
        parse("I think you should lower the learning rate.")


def test_tree_checkpoint_restores_edits_deletions_and_new_files(root):
    checkpoint = TreeCheckpoint.take(Project(root))
    (root / "configs/train.yaml").write_text("broken: true\n")
    (root / "src/pkg/module.py").unlink()
    (root / "src/pkg/new.py").write_text("x = 1\n")
    (root / "configs/data/mini.yaml").write_text("batch_size: 1\n")  # a 'data' folder below the root is code
    for rel in ("logs/run.log", "data/mini/train.csv", "checkpoints/last.ckpt"):  # run outputs and data are not
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x\n")
    assert checkpoint.changed() == ["configs/data/mini.yaml", "configs/train.yaml", "src/pkg/module.py", "src/pkg/new.py"]
    assert "+broken: true" in checkpoint.diff()
    checkpoint.restore()
    assert checkpoint.changed() == [] and (root / "logs/run.log").exists() and (root / "data/mini/train.csv").exists()


def test_missing_litellm_is_one_dependency_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "litellm", None)
    with pytest.raises(DependencyError, match=r"^the bugfix loop's LLM path \(openai/x\) needs the Python package 'litellm': pip install litellm$"):
        require_litellm("the bugfix loop's LLM path (openai/x)")


@pytest.mark.parametrize(("configured", "error", "expected"), [
    ("checkpoint:\n  dirpath: /proc/ckpt           # where .ckpt files go\n",
     "PermissionError: [Errno 13] Permission denied: '/proc/ckpt'",
     "configs/train.yaml: checkpoint.dirpath: '/proc/ckpt' -> 'checkpoints' (PermissionError writing /proc/ckpt)"),
    ("checkpoint:\n  dirpath: README.md/ckpt       # where .ckpt files go\n",  # relative: inside the run folder
     "NotADirectoryError: [Errno 20] Not a directory: '{root}/runs/20261125T120000Z-mlp/README.md/ckpt'",
     "configs/train.yaml: checkpoint.dirpath: 'README.md/ckpt' -> 'checkpoints' (NotADirectoryError writing "
     "{root}/runs/20261125T120000Z-mlp/README.md/ckpt)"),
    ("run:\n  root: /proc/runs               # run folders\n",
     "PermissionError: [Errno 13] Permission denied: '/proc/runs/20261125T120000Z-mlp'",
     "configs/train.yaml: run.root: '/proc/runs' -> 'runs' (PermissionError writing /proc/runs/20261125T120000Z-mlp)"),
    ("checkpoint:\n  dirpath: checkpoints           # where .ckpt files go\n",  # the defaults themselves fail: not ours
     "PermissionError: [Errno 13] Permission denied: '{root}/runs/20261125T120000Z-mlp/checkpoints'", None),
])
def test_unwritable_fix_resets_the_folder_that_failed(root, configured, error, expected):
    (root / "configs/train.yaml").write_text(TRAIN.replace(
        "checkpoint:\n  dirpath: checkpoints           # where .ckpt files go\n", configured))
    rule, found = diagnose(failure(error.format(root=root)))[0]
    assert rule.name == "unwritable_path"
    assert rule.fix(Context(Project(root), sys.executable), found) == (expected and expected.format(root=root))
