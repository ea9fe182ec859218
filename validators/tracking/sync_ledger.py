"""The sync agent's ledger: SQLite in WAL mode, one row per run content, kept outside the watched runs.

    with SyncLedger.open(Path("runs.sync.sqlite")) as ledger:     # creates the table on first use
        row = ledger.find("offline-run-…/run-2yx8dez7.wandb", sha256)   # None: this content was never seen
        ledger.add(run_path, run_id, size, sha256)                  # state "seen"
        ledger.set_state(row.id, SYNCING, attempts=row.attempts + 1)
        ledger.rows()                                               # every row, oldest first

A row is keyed by the run file's path (relative to the watched folder) and the sha256 of its content:
a run that is resumed and grows gets a second row and is synced again; the first row stays. States:
seen (found, waiting to be finished or retried), syncing (a `wandb sync` is running or the agent died
during one), synced, partial (synced without an exit record after the quiet period), failed (parked
after the last attempt, until `sync-agent retry`). The ledger holds no credential: errors are
scrubbed of the API key before they are stored.

The OS lock (`lock`) is on `<ledger>.lock`, so two agents on the same folder never sync at once;
`status` and `retry` read and write the ledger under SQLite's own locking, beside a running agent.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import HephaestusError
from ..job_ledger import now  # both ledgers stamp UTC ISO 8601 to the second

SEEN, SYNCING, SYNCED, PARTIAL, FAILED = "seen", "syncing", "synced", "partial", "failed"
STATES = (SEEN, SYNCING, SYNCED, PARTIAL, FAILED)
DONE = (SYNCED, PARTIAL)

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY,
    run_path    TEXT NOT NULL,              -- the .wandb file, relative to the watched folder
    run_id      TEXT NOT NULL,              -- W&B's run id (from the run record)
    size        INTEGER NOT NULL,           -- bytes of the .wandb file this row is about
    sha256      TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('seen', 'syncing', 'synced', 'partial', 'failed')),
    finished    INTEGER NOT NULL DEFAULT 0, -- 1: the exit record is in the file
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT NOT NULL DEFAULT '',   -- first lines of the last failure (API key scrubbed)
    url         TEXT NOT NULL DEFAULT '',   -- the run's page, from `wandb sync`'s output
    next_try    REAL NOT NULL DEFAULT 0,    -- epoch seconds: not before (back-off after a failure)
    seen_at     TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    synced_at   TEXT NOT NULL DEFAULT '',
    UNIQUE (run_path, sha256)
);
"""


class LedgerError(HephaestusError):
    """The ledger cannot be opened or locked: which file, and what to do."""


@dataclass
class Row:
    id: int
    run_path: str
    run_id: str
    size: int
    sha256: str
    state: str
    finished: bool
    attempts: int
    last_error: str
    url: str
    next_try: float
    seen_at: str
    updated_at: str
    synced_at: str


def default_path(watch: Path) -> Path:
    """Beside the watched folder, never inside it: runs/ -> runs.sync.sqlite."""
    return watch.resolve().parent / f"{watch.resolve().name}.sync.sqlite"


class SyncLedger:
    def __init__(self, path: Path, db: sqlite3.Connection):
        self.path, self.db = path, db

    @classmethod
    @contextmanager
    def open(cls, path: Path) -> Iterator[SyncLedger]:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=30, isolation_level=None)  # autocommit: every write is durable at once
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(SCHEMA)
        except sqlite3.Error as err:
            raise LedgerError(f"{path}: cannot open the sync ledger ({err}); check the folder is writable, or pass "
                              "--ledger PATH") from err
        try:
            yield cls(path, db)
        finally:
            db.close()

    def _rows(self, where: str = "1", args: tuple = (), order: str = "id") -> list[Row]:
        cursor = self.db.execute(f"SELECT * FROM runs WHERE {where} ORDER BY {order}", args)
        return [Row(*r[:5], r[5], bool(r[6]), *r[7:]) for r in cursor.fetchall()]

    def rows(self) -> list[Row]:
        return self._rows()

    def find(self, run_path: str, sha256: str) -> Row | None:
        found = self._rows("run_path = ? AND sha256 = ?", (run_path, sha256))
        return found[0] if found else None

    def latest(self, run_path: str) -> Row | None:
        """The newest row of one run file (its current content, or the last one synced)."""
        found = self._rows("run_path = ?", (run_path,), order="id DESC LIMIT 1")
        return found[0] if found else None

    def of_run(self, key: str) -> list[Row]:
        """Rows whose run id, run file or run folder is `key`."""
        return self._rows("run_id = ? OR run_path = ? OR run_path LIKE ?", (key, key, f"{key.rstrip('/')}/%"))

    def add(self, run_path: str, run_id: str, size: int, sha256: str, finished: bool) -> Row:
        stamp = now()
        self.db.execute("INSERT INTO runs (run_path, run_id, size, sha256, state, finished, seen_at, updated_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (run_path, run_id, size, sha256, SEEN, int(finished), stamp, stamp))
        row = self.find(run_path, sha256)
        assert row is not None
        return row

    def update(self, row: Row, **fields: object) -> Row:
        """Set `fields` (and updated_at) on the row; returns it as stored."""
        if "state" in fields and fields["state"] not in STATES:
            raise ValueError(f"unknown state {fields['state']!r}")
        fields["updated_at"] = now()
        names = ", ".join(f"{name} = ?" for name in fields)
        self.db.execute(f"UPDATE runs SET {names} WHERE id = ?", (*fields.values(), row.id))
        return self._rows("id = ?", (row.id,))[0]


@contextmanager
def lock(ledger: Path, wait: bool) -> Iterator[None]:
    """Hold `<ledger>.lock` (flock) for the agent's lifetime; a second agent waits or stops with who holds it."""
    path = ledger.with_name(ledger.name + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise LedgerError(f"{path}: another sync agent holds the ledger ({holder}); stop it first, watch another "
                              "folder, or pass --wait-lock to wait for it") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {os.uname().nodename} since {now()}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # closing the descriptor releases the lock, as the kernel does when the agent is killed
