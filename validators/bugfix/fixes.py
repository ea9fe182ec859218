"""The catalog of known training failures: one detector and one fix per rule.

A detector reads a failed run (its output and last error line) and returns what it found, or
None. A fix edits the project's configs (comment-preserving, one line where possible) or its
requirement files and venv, and returns a sentence saying what it did, or None when it does not
apply (the value is already at its floor, say). The loop in `bugfix.py` tries the rules in catalog
order, checks every fix by re-running the training, and rolls back what did not help.

    for rule in CATALOG:
        found = rule.detect(failure)
        if found is not None:
            action = rule.fix(context, found)
"""

from __future__ import annotations

import difflib
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ..config_edit import ROOT_FILE, ConfigEdit
from ..errors import FixError
from ..pins import REQUIREMENT_FILES, distribution
from ..project import Project

Found = dict[str, Any]
SAFE_LR = 1e-3        # AdamW's customary default: a diverging run restarts from at most this
MIN_LR = 1e-7        # below this a lower learning rate is not the cure
CLIP_NORM = 1.0       # gradient-norm clip added with a lower learning rate
WRITABLE_DEFAULTS = {"checkpoint.dirpath": "checkpoints", "logger.save_dir": ".", "run.root": "runs"}  # the schemas' defaults


@dataclass(frozen=True)
class Failure:
    """A failed training run as the loop saw it."""

    output: str           # the tail of stdout and stderr
    error: str            # the last error line: the failure's signature
    returncode: int | None
    timed_out: bool = False


@dataclass
class Context:
    """What a fix may use: the project, its config files, and the interpreter that trains it."""

    project: Project
    python: str
    undo: list[Callable[[], None]] = field(default_factory=list)  # run on rollback (e.g. uninstall)

    @property
    def root(self) -> Path:
        return self.project.root

    @cached_property
    def config(self) -> ConfigEdit:
        return ConfigEdit(self.project)

    @cached_property
    def has_cuda(self) -> bool:
        probe = subprocess.run([self.python, "-c", "import torch; print(torch.cuda.is_available())"],
                               capture_output=True, text=True, timeout=120)
        return probe.stdout.strip() == "True"


@dataclass(frozen=True)
class Rule:
    name: str
    title: str                                        # what went wrong, for the report
    detect: Callable[[Failure], Found | None]
    fix: Callable[[Context, Found], str | None]
    repeatable: bool = False                          # may apply again to its own result (halve again)


def _search(pattern: str, text: str) -> re.Match[str] | None:
    return re.search(pattern, text, re.MULTILINE)


# --- detectors and fixes, in catalog order -----------------------------------------------------

def detect_config_key(f: Failure) -> Found | None:
    m = _search(r"^error: (?P<file>\S*configs/\S+\.yaml): (?P<key>[\w.]+): is not a known key \(hint: did you mean '(?P<near>[\w.]+)'\?\)", f.output)
    if m:  # config.py names the file by its absolute path: keep the project-relative part
        return {"kind": "key", **m.groupdict(), "file": m["file"][m["file"].rfind("configs/"):]}
    m = _search(r"^error: .*?: (?P<key>[\w.]+): '(?P<value>[^']*)' is not one of [^(]*\(hint: did you mean '(?P<near>[^']+)'\?\)", f.output)
    if m:
        return {"kind": "value", **m.groupdict()}
    m = _search(r"^error: \S+: defaults\.(?P<group>\w+): '(?P<value>[^']*)' is not a file in configs/\w+/ \(hint: choose one of (?P<choices>[^)]*)\)", f.output)
    if m:
        near = difflib.get_close_matches(m["value"], m["choices"].split(", "), n=1)
        return {"kind": "choice", "group": m["group"], "value": m["value"], "near": near[0]} if near else None
    return None


def fix_config_key(ctx: Context, found: Found) -> str | None:
    if found["kind"] == "choice":
        ctx.config.set_choice(found["group"], found["near"])
        return f"configs/train.yaml: defaults.{found['group']}: {found['value']!r} -> {found['near']!r} (the nearest config file)"
    if found["kind"] == "value":
        rel = ctx.config.set_key(found["key"], found["near"])
        return f"{rel}: {found['key']}: {found['value']!r} -> {found['near']!r} (the nearest allowed value)"
    rel = Path(found["file"])
    parts = found["key"].split(".")
    path = parts if rel == ROOT_FILE else parts[1:]  # a group file holds its keys without the group prefix
    ctx.config.rename_key(rel, path, found["near"].split(".")[-1])
    return f"{rel}: renamed key {found['key']!r} to {found['near']!r} (the nearest valid key)"


def detect_gpu(f: Failure) -> Found | None:
    m = _search(r"No supported gpu backend found|CUDA is not available|Found no NVIDIA driver|"
                r"GPUAccelerator can not run on your system|torch\.cuda\.is_available\(\)` is False|"
                r"Torch not compiled with CUDA enabled", f.output)
    return {"message": m.group(0)} if m else None


def fix_gpu(ctx: Context, found: Found) -> str | None:
    cfg = ctx.config
    chosen = cfg.choice("trainer")
    if chosen != "cpu" and (ctx.root / "configs/trainer/cpu.yaml").is_file() and str(cfg.value("trainer.accelerator")) in {"gpu", "cuda"}:
        cfg.set_choice("trainer", "cpu")
        return f"configs/train.yaml: defaults.trainer: {chosen!r} -> 'cpu' (no CUDA GPU on this machine)"
    before = cfg.value("trainer.accelerator")
    if before == "cpu":
        return None
    rel = cfg.set_key("trainer.accelerator", "cpu")
    return f"{rel}: trainer.accelerator: {before!r} -> 'cpu' (no CUDA GPU on this machine)"


def detect_precision(f: Failure) -> Found | None:
    m = _search(r"transformer_engine|Precision '(?P<value>[^']+)' is invalid|does not support bfloat16|"
                r"(?:bf16|16)[-\w]* (?:is )?not supported|Only `precision='bf16-mixed'` is supported", f.output)
    return {"message": m.group(0)} if m else None


def fix_precision(ctx: Context, found: Found) -> str | None:
    before = ctx.config.value("trainer.precision")
    if before is None or str(before) == "32-true":
        return None
    after = "16-mixed" if "bfloat16" in found["message"] and ctx.has_cuda else "32-true"
    rel = ctx.config.set_key("trainer.precision", after)
    return f"{rel}: trainer.precision: {before!r} -> {after!r} ({found['message']!r} on this hardware)"


def detect_oom(f: Failure) -> Found | None:
    m = _search(r"OutOfMemoryError|CUDA out of memory|DefaultCPUAllocator: can't allocate memory|^MemoryError", f.output)
    return {"message": m.group(0)} if m else None


def fix_oom(ctx: Context, found: Found) -> str | None:
    batch = int(ctx.config.value("data.batch_size") or 0)
    accumulate = int(ctx.config.value("trainer.accumulate_grad_batches") or 1)
    if batch < 2:
        return None
    rel = ctx.config.set_key("data.batch_size", batch // 2)
    rel2 = ctx.config.set_key("trainer.accumulate_grad_batches", accumulate * 2)
    return (f"{rel}: data.batch_size: {batch} -> {batch // 2}; {rel2}: trainer.accumulate_grad_batches: "
            f"{accumulate} -> {accumulate * 2} (effective batch {batch * accumulate} kept)")


def detect_worker_crash(f: Failure) -> Found | None:
    m = _search(r"DataLoader worker \(pid(?:\(s\))? [\d, ]+\) (?:exited unexpectedly|is killed by signal[^.\n]*)|"
                r"out of shared memory", f.output)
    return {"message": m.group(0)} if m else None


def fix_worker_crash(ctx: Context, found: Found) -> str | None:
    before = int(ctx.config.value("data.num_workers") or 0)
    if before == 0:
        return None
    rel = ctx.config.set_key("data.num_workers", 0)
    return f"{rel}: data.num_workers: {before} -> 0 (load in the main process; raise /dev/shm before using workers again)"


def detect_nonfinite(f: Failure) -> Found | None:
    m = _search(r"non-finite (?:loss|metric)[^\n]*|loss (?:returned in `training_step` )?is (?:nan|inf)", f.output)
    return {"message": m.group(0)} if m else None


def fix_nonfinite(ctx: Context, found: Found) -> str | None:
    lr = float(ctx.config.value("optim.lr") or SAFE_LR)
    clip = ctx.config.value("trainer.gradient_clip_val")
    new_lr = min(lr / 10, SAFE_LR)
    if new_lr < MIN_LR:
        return None
    rel = ctx.config.set_key("optim.lr", new_lr)
    action = f"{rel}: optim.lr: {lr:g} -> {new_lr:g}"
    if clip is None:
        rel2 = ctx.config.set_key("trainer.gradient_clip_val", CLIP_NORM)
        action += f"; {rel2}: trainer.gradient_clip_val: null -> {CLIP_NORM}"
    return action


SIZE_KEYS = ("num_features", "in_features", "input_dim", "input_size", "channels", "in_channels")


def detect_shape(f: Failure) -> Found | None:
    m = _search(r"data\.num_classes is (?P<configured>\d+) but the training split has (?P<actual>\d+) classes", f.output)
    if m:
        return {"key": "data.num_classes", "configured": int(m["configured"]), "actual": int(m["actual"])}
    m = _search(r"mat1 and mat2 shapes cannot be multiplied \(\d+x(?P<actual>\d+) and (?P<configured>\d+)x\d+\)", f.output)
    if m is None:
        m = _search(r"to have (?P<configured>\d+) channels, but got (?P<actual>\d+) channels", f.output)
    if m:
        return {"key": None, "configured": int(m["configured"]), "actual": int(m["actual"])}
    return None


def fix_shape(ctx: Context, found: Found) -> str | None:
    keys = [found["key"]] if found["key"] else [f"{g}.{k}" for g in ("data", "model") for k in SIZE_KEYS]
    for key in keys:
        if ctx.config.value(key) == found["configured"]:
            rel = ctx.config.set_key(key, found["actual"])
            return f"{rel}: {key}: {found['configured']} -> {found['actual']} (what the data has)"
    return None


def detect_missing_package(f: Failure) -> Found | None:
    m = _search(r"^ModuleNotFoundError: No module named '(?P<module>[\w]+)", f.output)
    return {"module": m["module"], "package": distribution(m["module"])} if m else None


def fix_missing_package(ctx: Context, found: Found) -> str | None:
    package = found["package"]
    if (ctx.root / "src" / found["module"]).exists():
        return None  # the project's own package: a path problem, not a missing distribution
    uv = shutil.which("uv")
    install = [uv, "pip", "install", "--python", ctx.python, package] if uv else [ctx.python, "-m", "pip", "install", package]
    done = subprocess.run(install, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise FixError(f"installing {package} failed: {done.stderr.strip().splitlines()[-1:]}")
    uninstall = [uv, "pip", "uninstall", "--python", ctx.python, package] if uv else [ctx.python, "-m", "pip", "uninstall", "-y", package]
    ctx.undo.append(lambda: subprocess.run(uninstall, capture_output=True, timeout=300) and None)
    version = subprocess.run([ctx.python, "-c", f"import importlib.metadata as m; print(m.version({package!r}))"],
                             capture_output=True, text=True, timeout=120).stdout.strip()
    pin = f"{package}=={version}"
    files = []
    for name in REQUIREMENT_FILES:
        path = ctx.root / name
        if path.is_file() and not re.search(rf"^{re.escape(package)}\s*==", path.read_text(encoding="utf-8"), re.MULTILINE | re.IGNORECASE):
            text = path.read_text(encoding="utf-8")
            path.write_text(text + ("" if text.endswith("\n") else "\n") + pin + "\n", encoding="utf-8")
            files.append(name)
    return f"installed {pin} into {ctx.python}; pinned it in {', '.join(files) or 'the requirement files (already there)'}"


def detect_unwritable(f: Failure) -> Found | None:
    m = _search(r"^(?P<error>PermissionError|NotADirectoryError|FileNotFoundError|OSError|IsADirectoryError): "
                r"\[Errno \d+\] [^:\n]*: '(?P<path>[^']+)'", f.output)
    return m.groupdict() if m else None


def fix_unwritable(ctx: Context, found: Found) -> str | None:
    failed = Path(found["path"])
    for key, default in WRITABLE_DEFAULTS.items():
        value = ctx.config.value(key)
        if value is None:
            continue
        configured = Path(str(value))
        if configured.is_absolute() or key == "run.root":  # run.root is relative to the project root
            configured = ctx.root / configured
            hit = failed == configured or configured in failed.parents or failed in configured.parents
        else:  # relative to the run folder, a new one each run: match the failed path's tail
            n = len(configured.parts)
            hit = n > 0 and any(p.parts[-n:] == configured.parts for p in (failed, *failed.parents))
        if hit and str(value) != default:  # a default that fails is not this fix's to cure
            rel = ctx.config.set_key(key, default)
            return f"{rel}: {key}: {value!r} -> {default!r} ({found['error']} writing {found['path']})"
    return None


CATALOG: tuple[Rule, ...] = (
    Rule("config_key", "misspelt config key or value", detect_config_key, fix_config_key),
    Rule("gpu_unavailable", "GPU requested on a machine without one", detect_gpu, fix_gpu),
    Rule("precision_unsupported", "precision mode the hardware lacks", detect_precision, fix_precision),
    Rule("out_of_memory", "out of memory", detect_oom, fix_oom, repeatable=True),
    Rule("dataloader_worker", "DataLoader worker crash", detect_worker_crash, fix_worker_crash),
    Rule("nonfinite_loss", "NaN or inf loss", detect_nonfinite, fix_nonfinite, repeatable=True),
    Rule("shape_mismatch", "class count or input shape does not match the data", detect_shape, fix_shape),
    Rule("missing_package", "missing Python package", detect_missing_package, fix_missing_package),
    Rule("unwritable_path", "unwritable output or checkpoint folder", detect_unwritable, fix_unwritable),
)
RULES = {rule.name: rule for rule in CATALOG}


def diagnose(failure: Failure, exclude: set[str] = frozenset()) -> list[tuple[Rule, Found]]:
    """Every catalog rule that recognises `failure` (in catalog order), minus `exclude`."""
    return [(rule, found) for rule in CATALOG if rule.name not in exclude
            for found in [rule.detect(failure)] if found is not None]
