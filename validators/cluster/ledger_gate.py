"""Gate D4: the job ledgers in jobs/ read, with known states, and the backends they used are configured."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..artifacts import JOBS
from ..errors import ClusterError, GateError
from ..job_ledger import BACKENDS, STATES, load
from . import config


def rule_jobs(project: Any) -> Iterator[GateError]:
    """Gate D4: every ledger in jobs/ reads, with known states; the settings of `local` and of each backend a job
    used are valid (configs/cluster/<backend>.yaml: an unused qizhi.yaml may keep its empty ids)."""
    root = project.root
    used = {"local"}
    folder = root / JOBS.path
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        rel = path.relative_to(root).as_posix()
        try:
            record = load(path)
        except ClusterError as err:
            yield GateError(rel, "", None, "a job ledger written by `python -m validators submit`", str(err))
            continue
        used.add(record.backend)
        for n, entry in enumerate(record.history):
            if entry.get("state") not in STATES:
                yield GateError(rel, f"history[{n}].state", entry.get("state"), f"one of {', '.join(STATES)}",
                                "restore the file from git")
    for backend in sorted(used & set(BACKENDS)):
        yield from config.check(root, backend)
