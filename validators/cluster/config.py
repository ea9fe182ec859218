"""configs/cluster/<backend>.yaml: typed, closed and range-checked, every problem reported at once.

    cfg = load(root, "slurm")            # a dict of every key, defaults filled in; ClusterConfigError otherwise
    errors = list(check(root, "qizhi"))  # GateErrors: file, key, bad value, expectation, hint

The schema of each file is KEYS below: one place, read by the loader, the gate and the tests (which
check that every key of the shipped YAML files is here and commented there).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..artifacts import CLUSTER_CONFIGS
from ..errors import ClusterError, GateError
from .jobs import BACKENDS

IMAGE_TAG = re.compile(r"^[^\s@]+:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$|^[^\s@]+@sha256:[0-9a-f]{64}$")
SLURM_TIME = re.compile(r"^(\d+-)?\d{1,2}(:\d{2}){0,2}$|^\d+$")  # minutes, MM:SS, HH:MM:SS, D-HH[:MM[:SS]]
SLURM_MEM = re.compile(r"^\d+[KMGT]?$")


@dataclass(frozen=True)
class Key:
    kind: type | tuple[type, ...]    # int, float, str, bool, list (of str), dict (str -> str)
    default: Any
    expected: str                    # what a valid value is, for the error
    check: Callable[[Any], bool] | None = None
    hint: str = ""


def _ints(lo: int, hi: int | None = None) -> Callable[[Any], bool]:
    return lambda v: v >= lo and (hi is None or v <= hi)


def _strs(v: Any) -> bool:
    return all(isinstance(x, str) for x in v)


POLL = {  # every backend: extra training overrides; how `job wait` polls (2 s doubling to the ceiling) and retries
    "overrides": Key(list, [], "a list of scripts/train.py overrides (strings)", _strs, "e.g. [trainer=ddp_cpu, logger=wandb]"),
    "poll_initial_s": Key((int, float), 2, "seconds > 0 before the first poll", lambda v: v > 0),
    "poll_max_s": Key((int, float), 60, "a ceiling of the doubling poll interval, 1..3600 s", lambda v: 1 <= v <= 3600),
    "retries": Key(int, 5, "an integer 0..20: transient errors tolerated in a row", _ints(0, 20)),
}
KEYS: dict[str, dict[str, Key]] = {
    "local": {**POLL},
    "slurm": {
        "partition": Key(str, "", "a partition name, or '' for the cluster's default"),
        "nodes": Key(int, 1, "an integer >= 1 (set trainer.num_nodes to match)", _ints(1)),
        "ntasks_per_node": Key(int, 1, "an integer >= 1: one task per device (trainer.devices)", _ints(1)),
        "gpus_per_node": Key(int, 0, "an integer >= 0", _ints(0)),
        "cpus_per_task": Key(int, 1, "an integer >= 1", _ints(1)),
        "mem": Key(str, "", "'' or a size like 16G", lambda v: v == "" or bool(SLURM_MEM.match(v))),
        "time": Key(str, "01:00:00", "a SLURM time: minutes, HH:MM:SS or D-HH:MM:SS", lambda v: bool(SLURM_TIME.match(v))),
        "account": Key(str, "", "an account name, or ''"),
        "qos": Key(str, "", "a QOS name, or ''"),
        "requeue_signal_s": Key(int, 90, "0 (no signal: the job ends TIMEOUT at its limit) or 10..3600: SIGUSR1 this many"
                                " seconds before the time limit", lambda v: v == 0 or 10 <= v <= 3600),
        "max_requeues": Key(int, 3, "an integer 0..100: requeues on the signal; then the signal is ignored and the job "
                            "ends TIMEOUT at its limit", _ints(0, 100)),
        **POLL,
    },
    "qizhi": {
        "base_url": Key(str, "https://qz.sii.edu.cn", "an http(s) URL", lambda v: bool(re.match(r"^https?://[^\s/]+", v)),
                        "the environment may override it with QZ_BASE_URL"),
        "workspace_id": Key(str, "", "the workspace id (non-empty)", bool, "the platform's workspace page shows it"),
        "project_id": Key(str, "", "the project id (non-empty)", bool),
        "logic_compute_group_id": Key(str, "", "the compute group id (non-empty)", bool),
        "spec_id": Key(str, "", "the resource spec id (non-empty)", bool, "the quota_id of a job's detail"),
        "image": Key(str, "", "an image with a tag, like registry/name:tag", lambda v: bool(IMAGE_TAG.match(v)),
                     "an image without a tag is ambiguous: name the exact one the .venv was built in"),
        "image_type": Key(str, "SOURCE_PRIVATE", "one of SOURCE_PUBLIC, SOURCE_PRIVATE, SOURCE_OFFICIAL",
                          lambda v: v in ("SOURCE_PUBLIC", "SOURCE_PRIVATE", "SOURCE_OFFICIAL")),
        "instance_count": Key(int, 1, "an integer >= 1: nodes (set trainer.num_nodes to match)", _ints(1)),
        "shm_gi": Key(int, 32, "an integer >= 1: shared memory in GiB", _ints(1)),
        "task_priority": Key(int, 1, "an integer 1..10", _ints(1, 10)),
        "framework": Key(str, "pytorch", "a framework name (non-empty)", bool),
        "shared_dir": Key(str, "", "an absolute path: the project on the platform's storage",
                          lambda v: v.startswith("/"), "the job `cd`s there; e.g. /inspire/hdd/project/<you>/<project>"),
        **POLL,
    },
}


def config_path(root: Path, backend: str) -> Path:
    return root / CLUSTER_CONFIGS.path / f"{backend}.yaml"


def unknown_backend(backend: str) -> ClusterError:
    return ClusterError(f"--backend: {backend!r} is not a backend", f"expected one of {', '.join(BACKENDS)}")


def check(root: Path, backend: str) -> Iterator[GateError]:
    """Every problem of configs/cluster/<backend>.yaml: unreadable, unknown keys, wrong types, out of range."""
    if backend not in KEYS:
        raise unknown_backend(backend)
    path = config_path(root, backend)
    rel = path.relative_to(root).as_posix()
    if not path.is_file():
        yield GateError(rel, "", None, f"the {backend} backend's settings", "copier update restores the template's file")
        return
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        yield GateError(rel, "", str(err).splitlines()[0], "valid YAML", "fix the line the parser names")
        return
    if not isinstance(data, dict):
        yield GateError(rel, "", data, "a mapping of keys to values")
        return
    schema = KEYS[backend]
    for key in data:
        if key not in schema:
            close = difflib.get_close_matches(str(key), list(schema), n=1)
            yield GateError(rel, str(key), data[key], f"one of the keys {', '.join(schema)}",
                            f"did you mean {close[0]}?" if close else "remove it")
    for key, spec in schema.items():
        if key not in data:
            continue
        value = data[key]
        kinds = spec.kind if isinstance(spec.kind, tuple) else (spec.kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            yield GateError(rel, key, value, spec.expected, spec.hint)
        elif spec.check is not None and not spec.check(value):
            yield GateError(rel, key, value, spec.expected, spec.hint)


class ClusterConfigError(ClusterError):
    """configs/cluster/<backend>.yaml has errors: all of them, one per line."""

    def __init__(self, errors: list[GateError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


def load(root: Path, backend: str) -> dict[str, Any]:
    """The backend's settings with defaults filled in; ClusterConfigError listing every problem."""
    errors = list(check(root, backend))
    if errors:
        raise ClusterConfigError(errors)
    data = yaml.safe_load(config_path(root, backend).read_text(encoding="utf-8")) or {}
    return {key: data.get(key, spec.default) for key, spec in KEYS[backend].items()}
