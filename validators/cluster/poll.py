"""Polling jobs until they end: one scheduler query per poll for all of a backend's open jobs, an
interval that backs off, a bound on transient failures, and a wall-clock limit that leaves jobs running.

    records = refresh(root, backend, records, retries=5)          # one query; changed states saved to the ledger
    records = wait(root, backend, records, limit_s=3600, initial_s=2, max_s=60, retries=5)

The interval starts at `initial_s` and doubles to `max_s` (2, 4, 8, ... 60 s by default); it starts
over after a state change, when the next change is most likely (RUNNING soon after PENDING ends).
A job that waits an hour at the 60 s ceiling costs about 60 queries, shared by all open jobs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import job_ledger as ledger
from ..errors import TransientError
from ..job_ledger import JobRecord
from .jobs import Backend, Status

Report = Callable[[str], None]


@dataclass
class Counter:
    """What a wait cost: scheduler queries and transient failures (the benchmark reads it)."""

    queries: int = 0
    failures: int = 0
    sleeps: list[float] = field(default_factory=list)


def query(backend: Backend, job_ids: list[str], *, retries: int, initial_s: float, max_s: float,
          sleep: Callable[[float], None], report: Report, counter: Counter | None = None) -> dict[str, Status]:
    """backend.query(job_ids), retried after a TransientError up to `retries` times with a doubling pause
    (the platform's Retry-After when it gave one); the last error is raised when they run out."""
    counter = counter or Counter()
    pause = initial_s
    for attempt in range(retries + 1):
        counter.queries += 1
        try:
            return backend.query(job_ids)
        except TransientError as err:
            counter.failures += 1
            if attempt == retries:
                raise TransientError(f"{backend.name}: {attempt + 1} queries in a row failed; the last: {err.problem}",
                                     "the jobs were not touched; run the same command again to go on polling") from err
            wait_s = err.retry_after if err.retry_after is not None else pause
            report(f"{backend.name}: query failed ({err.problem}); retry {attempt + 1}/{retries} in {wait_s:g} s")
            counter.sleeps.append(wait_s)
            sleep(wait_s)
            pause = min(pause * 2, max_s)
    raise AssertionError("unreachable")


def refresh(root: Path, backend: Backend, records: list[JobRecord], *, retries: int = 5, initial_s: float = 2,
            max_s: float = 60, sleep: Callable[[float], None] = time.sleep, report: Report = print,
            counter: Counter | None = None) -> list[JobRecord]:
    """Ask the scheduler once about every open job of `records`; save and report each change.
    Returns the records whose state changed."""
    open_jobs = [r for r in records if not r.terminal and r.backend == backend.name]
    if not open_jobs:
        return []
    statuses = query(backend, [r.job_id for r in open_jobs], retries=retries, initial_s=initial_s, max_s=max_s,
                     sleep=sleep, report=report, counter=counter)
    changed = []
    for record in open_jobs:
        status = statuses.get(record.job_id)
        if status is None:
            continue  # the scheduler forgot it (or has not listed it yet): keep the last known state
        if record.observe(status):
            ledger.save(root, record)
            changed.append(record)
            detail = f" ({status.message})" if status.message else ""
            report(f"{record.key}: {status.state} [{status.native}]{detail}")
    return changed


def wait(root: Path, backend: Backend, records: list[JobRecord], *, limit_s: float, initial_s: float = 2,
         max_s: float = 60, retries: int = 5, clock: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], None] = time.sleep, report: Report = print, counter: Counter | None = None) -> bool:
    """Poll until every job in `records` has ended (True) or `limit_s` has passed (False: they keep running)."""
    counter = counter or Counter()
    deadline = clock() + limit_s
    interval = initial_s
    while True:
        changed = refresh(root, backend, records, retries=retries, initial_s=initial_s, max_s=max_s, sleep=sleep,
                          report=report, counter=counter)
        if all(r.terminal for r in records):
            return True
        if changed:
            interval = initial_s
        left = deadline - clock()
        if left <= 0:
            return False
        pause = min(interval, left)
        counter.sleeps.append(pause)
        sleep(pause)
        interval = min(interval * 2, max_s)
