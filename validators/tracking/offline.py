"""Stage D1's gate: the project's W&B settings are offline, and no W&B API key is in a file it keeps.

    python -m validators check --stages D1     # also part of the review before compute (`submit`)
    errors = list(rule_wandb_offline(project))

Compute nodes have no internet; a run writes its W&B data offline into its run folder and the sync agent
(D5) uploads it later with the key from its own environment. So the gate reports:
- W&B turned online: `offline` other than true in configs/logger/*.yaml, or as `logger.offline` in
  configs/train.yaml or an experiment; an override `logger.offline=false` in a backend's `overrides`
  (configs/cluster/*.yaml); `WANDB_MODE` other than offline, dryrun or disabled in a launch script
  (scripts/launch_*.sh). What already ran (a job's ledger, its batch script) is history and is searched
  for keys only: a job exports WANDB_MODE=offline, and a run whose `logger.offline` is false follows it;
- a W&B API key in configs/**, a job's ledger (its `command` and `train_args`), a job's batch script
  (runs/*/job.sbatch), the launch scripts or a `.env`-like file: `WANDB_API_KEY=<value>` (or `: <value>`),
  `api_key: <value>` under a wandb key, and any word shaped like a W&B key: 40 hex digits, the classic
  key, alone or behind an on-prem prefix such as `local-` (wandb 0.31's `check_api_key` takes an optional
  `<prefix>-` and then 40 or more word characters). A ledger's `commit` is 40 hex digits too, so only its
  command and training arguments are searched for that shape.
An error never holds the key itself, only its first 4 characters and its length (`Redacted`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import yaml

from ..artifacts import CLUSTER_CONFIGS, EXPERIMENTS, JOBS, LAUNCH_SLURM, LAUNCH_TORCHRUN, RUNS
from ..errors import GateError
from ..project import Project

CONFIGS = "configs"
LOGGERS = f"{CONFIGS}/logger"
TRAIN_CONFIG = f"{CONFIGS}/train.yaml"
BATCH_SCRIPT = "job.sbatch"  # the slurm backend keeps each job's script in its run folder
OFFLINE_MODES = ("offline", "dryrun", "disabled")
ENV_FILE = re.compile(r"^(?:\.env(?:\..+)?|.+\.env|\.envrc)$")  # .env, .env.local, cluster.env, .envrc
KEY_ENV = re.compile(r"""\bWANDB_API_KEY["']?[ \t]*[=:][ \t]*(?P<value>"[^"\n]*"|'[^'\n]*'|[^\s"'#;&|,)}\]]*)""")
KEY_SHAPE = re.compile(r"(?<![\w-])(?:[A-Za-z][A-Za-z0-9_]*-)?[0-9a-f]{40}(?![\w-])")
MODE = re.compile(r"""\bWANDB_MODE["']?[ \t]*[=:][ \t]*["']?(?P<value>[^\s"'#;&|,)}\]]*)""")
KEY_NAMES = ("api_key", "apikey", "wandb_api_key")
NO_KEY = ("no W&B API key in a file the project keeps: the machine that uploads (`wandb sync`, the sync agent) "
          "reads WANDB_API_KEY from its own environment")
NO_KEY_HINT = "delete it here, and revoke the key (https://wandb.ai/authorize): it has been in a file"
OFFLINE = "true: compute nodes have no internet, and `wandb sync` uploads the offline runs later"


@dataclass(frozen=True)
class Redacted:
    """What an error shows of a secret: its first 4 characters and its length, never the rest."""

    head: str
    length: int

    @classmethod
    def of(cls, secret: str) -> Redacted:
        return cls(secret[:4], len(secret))

    def __repr__(self) -> str:
        return f"{self.head}... ({self.length} characters, redacted)"


def _reference(value: str) -> bool:
    """An empty value, `$VAR`, `${VAR}` or `${oc.env:VAR}`, or a placeholder such as `<key>`: no key itself."""
    return not value or value.startswith("$") or (value.startswith("<") and value.endswith(">")) or set(value) <= {"."}


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _yaml(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None  # a config that does not parse is the config gates' error (A3, A4, D4)


def _keys_in(text: str, where: str, shapes: bool = True) -> Iterator[tuple[str, str]]:
    """(where, key) for each W&B key in `text`: named by WANDB_API_KEY, or (`shapes`) shaped like one."""
    for value in (m.group("value").strip("\"'") for m in KEY_ENV.finditer(text)):
        if not _reference(value):
            yield where, value
    if shapes:
        yield from ((where, m.group(0)) for m in KEY_SHAPE.finditer(text))


def _lines(text: str, shapes: bool = True) -> Iterator[tuple[str, str]]:
    for number, line in enumerate(text.splitlines(), 1):
        yield from _keys_in(line, f"line {number}", shapes)


def _named_keys(data: Any, path: str = "", under_wandb: bool = False) -> Iterator[tuple[str, str]]:
    """(dotted path, key) for `api_key: <value>` anywhere under a mapping key that names wandb."""
    if isinstance(data, dict):
        for key, value in data.items():
            sub = f"{path}.{key}" if path else str(key)
            if under_wandb and str(key).lower() in KEY_NAMES and isinstance(value, str | int) and not _reference(str(value)):
                yield sub, str(value)
            else:
                yield from _named_keys(value, sub, under_wandb or "wandb" in str(key).lower())
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _named_keys(value, f"{path}[{i}]", under_wandb)


def _key_errors(file: str, found: Iterator[tuple[str, str]]) -> Iterator[GateError]:
    """One error per key and file (a key named and shaped like one is reported once)."""
    seen: set[str] = set()
    for where, key in found:
        if key not in seen:
            seen.add(key)
            yield GateError(file, where, Redacted.of(key), NO_KEY, NO_KEY_HINT)


def _online_override(file: str, path: str, arg: Any) -> Iterator[GateError]:
    name, sep, value = str(arg).partition("=")
    if sep and name.strip().lstrip("+") == "logger.offline" and _yaml(value) is not True:
        yield GateError(file, path, str(arg), "no override that turns W&B online: compute nodes have no internet",
                        "remove it; W&B stays offline and `wandb sync` uploads the runs later")


def _modes(file: str, text: str) -> Iterator[GateError]:
    """`WANDB_MODE` set to anything but offline, dryrun or disabled."""
    for number, line in enumerate(text.splitlines(), 1):
        for m in MODE.finditer(line):
            if m.group("value") not in OFFLINE_MODES and not _reference(m.group("value")):
                yield GateError(file, f"line {number}", f"WANDB_MODE={m.group('value')}",
                                "WANDB_MODE=offline (or dryrun, disabled): compute nodes have no internet",
                                "export WANDB_MODE=offline; `wandb sync` uploads the runs later")


def _logger_settings(project: Project) -> Iterator[GateError]:
    """`offline` in every logger config, and `logger.offline` where train.yaml or an experiment sets it."""
    for path in sorted(project.path(LOGGERS).glob("*.yaml")):
        data = _yaml(_text(path) or "")
        if isinstance(data, dict) and "offline" in data and data["offline"] is not True:
            yield GateError(f"{LOGGERS}/{path.name}", "offline", data["offline"], OFFLINE, "set `offline: true`")
    settings = [project.path(TRAIN_CONFIG), *sorted(project.path(EXPERIMENTS).glob("*.yaml"))]
    for path in settings:
        data = _yaml(_text(path) or "")
        logger = data.get("logger") if isinstance(data, dict) else None
        if isinstance(logger, dict) and "offline" in logger and logger["offline"] is not True:
            yield GateError(path.relative_to(project.root).as_posix(), "logger.offline", logger["offline"], OFFLINE,
                            "delete the key (configs/logger/ keeps W&B offline) or set it to true")


def _configs(project: Project) -> Iterator[GateError]:
    """Keys anywhere under configs/; the backends' `overrides`."""
    for path in sorted(p for p in project.path(CONFIGS).rglob("*") if p.is_file()):
        text, rel = _text(path), path.relative_to(project.root).as_posix()
        if text is None:
            continue
        data = _yaml(text) if path.suffix in (".yaml", ".yml") else None
        yield from _key_errors(rel, chain(_named_keys(data), _lines(text)))
        if rel.startswith(f"{CLUSTER_CONFIGS.path}/") and isinstance(data, dict) and isinstance(data.get("overrides"), list):
            for i, arg in enumerate(data["overrides"]):
                yield from _online_override(rel, f"overrides[{i}]", arg)


def _jobs(project: Project) -> Iterator[GateError]:
    """Keys in each ledger (its command and training arguments by shape too) and batch script; launch scripts."""
    for path in sorted(project.path(JOBS).glob("*.yaml")):
        text, rel = _text(path) or "", f"{JOBS.path}/{path.name}"
        record = _yaml(text)
        record = record if isinstance(record, dict) else {}
        command = record.get("command") if isinstance(record.get("command"), str) else ""
        args = [str(a) for a in record.get("train_args") or []] if isinstance(record.get("train_args"), list) else []
        found = chain(_keys_in(command, "command"), *(_keys_in(arg, f"train_args[{i}]") for i, arg in enumerate(args)),
                      _lines(text, shapes=False))  # the rest of the file: named keys only (`commit` is 40 hex digits)
        yield from _key_errors(rel, found)
    for path in sorted(p for p in project.path(RUNS).glob(f"*/{BATCH_SCRIPT}") if not p.parent.is_symlink()):  # no runs/latest
        yield from _key_errors(path.relative_to(project.root).as_posix(), _lines(_text(path) or ""))
    for launch in (LAUNCH_SLURM, LAUNCH_TORCHRUN):
        text = _text(project.path(launch))
        if text is not None:
            yield from _key_errors(launch.path, _lines(text))
            yield from _modes(launch.path, text)


def _env_files(project: Project) -> Iterator[GateError]:
    """`.env`-like files anywhere in the project's own files (configs/ is searched whole already)."""
    for rel in project.files():
        if ENV_FILE.match(rel.rsplit("/", 1)[-1]) and not rel.startswith(f"{CONFIGS}/"):
            yield from _key_errors(rel, _lines(_text(project.path(rel)) or ""))


def rule_wandb_offline(project: Project) -> Iterator[GateError]:
    """D1: W&B offline in the project's settings and launch scripts; no W&B API key in a config, job, script or .env file."""
    yield from _logger_settings(project)
    yield from _configs(project)
    yield from _jobs(project)
    yield from _env_files(project)
