"""The sync agent (D5): upload each finished W&B offline run under a watched folder exactly once per content.

    settings = Settings(watch=Path("/shared/proj/runs"), ledger=default_path(Path("/shared/proj/runs")))
    run(settings, once=True)          # one pass: sync what is ready, then return the number of failed runs

One pass (`scan`) walks the watched folder for `offline-run-*/run-*.wandb` and, for each file:
- skips it while it changes: it must be quiet (unchanged size and mtime) for `grace_s`;
- reads its records (records.py): with the `exit` record it is finished and synced as `synced`;
  without one it is synced as `partial` only after `partial_after_s` of quiet (a crashed writer);
- keys it by path and sha256 in the ledger (sync_ledger.py): a content already synced is never synced
  again; a file that grows again (a resumed run) is new content and gets a row of its own.

`wandb sync` runs on a private copy of the run folder beside the ledger, never on the watched folder:
whatever that command writes (its `.wandb.synced` marker, logs) lands in the copy, and the copy's
sha256 must equal the ledger row's, so what was uploaded is exactly what the ledger names. The agent
never writes, moves or deletes anything under the watched folder. Failures back off (`backoff_s`,
doubling) and the run is parked `failed` after `attempts`; `sync-agent retry RUN` unparks it. A row left
`syncing` by a killed agent is synced again on start: W&B upserts the run by its id, so it stays one run.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import HephaestusError
from ..llm import redact
from . import records
from .sync_ledger import DONE, FAILED, PARTIAL, SEEN, SYNCED, SYNCING, Row, SyncLedger, lock, now

CLI_ENV = "WANDB_CLI"
VIEW = re.compile(r"View run (\S+) at (https?://\S+)")   # wandb 0.31: `wandb: [<project>/<id>] View run <id> at <url>`
ERROR = re.compile(r"^wandb: ERROR (.*)$", re.MULTILINE)
TORN = "incomplete record"   # the ERROR a log cut mid-record gives; expected when syncing a crashed run as partial
ERROR_LINES = 6


class SyncError(HephaestusError):
    """The agent cannot run: no `wandb` command, a watched folder that does not exist, a bad setting."""


@dataclass(frozen=True)
class Settings:
    watch: Path
    ledger: Path
    interval_s: float = 60.0        # between passes
    grace_s: float = 30.0           # a finished run's file must be unchanged this long
    partial_after_s: float = 3600.0  # a run with no exit record is synced as partial after this long unchanged
    timeout_s: float = 1800.0       # one `wandb sync`
    attempts: int = 5               # failures before a run is parked `failed`
    backoff_s: float = 60.0         # the wait after the first failure; doubles after each one
    cli: tuple[str, ...] = ()       # the wandb command (default: $WANDB_CLI, else `wandb` on PATH)


def wandb_cli() -> tuple[str, ...]:
    """`$WANDB_CLI` (split like a shell word list), else `wandb` on PATH."""
    if os.environ.get(CLI_ENV):
        return tuple(shlex.split(os.environ[CLI_ENV]))
    found = shutil.which("wandb")
    if not found:
        raise SyncError("no `wandb` command on PATH (hint: run the agent in the project's venv, `pip install wandb`, "
                        f"or set {CLI_ENV} to the command)")
    return (found,)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def offline_runs(watch: Path) -> Iterator[Path]:
    """Every `offline-run-*/run-*.wandb` under `watch`, in path order (online runs sync themselves)."""
    for folder, dirs, files in os.walk(watch):
        dirs.sort()
        if Path(folder).name.startswith("offline-run-"):
            dirs.clear()
            yield from (Path(folder) / name for name in sorted(files) if name.startswith("run-") and name.endswith(".wandb"))


def verdict(exited_0: bool, output: str, run_id: str, finished: bool) -> tuple[str, str]:
    """(the run URL, "") when `wandb sync` uploaded the run, else ("", why not).

    wandb 0.31 exits 0 after most failures (a refused key, retries given up): only exit 0 with the run's
    `View run <id> at <url>` line and no `wandb: ERROR` line is a sync. A run without an exit record
    (synced as partial) may end mid-record; the CLI uploads what precedes the tear and says so in an ERROR
    line that is expected here.
    """
    first = "\n".join(output.strip().splitlines()[:ERROR_LINES])
    if not exited_0:
        return "", first
    errors = [e for e in ERROR.findall(output) if finished or TORN not in e]
    if errors:
        return "", "wandb sync reported: " + "\n".join(errors[:ERROR_LINES])
    urls = [url.rstrip(".,)") for found_id, url in VIEW.findall(output) if found_id == run_id]
    if not urls:
        return "", f"wandb sync exited 0 but printed no URL of run {run_id}:\n{first}"
    return urls[-1], ""


def _die_with_parent() -> None:
    """In the `wandb sync` child: SIGTERM when the agent dies (even by kill -9), so no orphan uploads beside the next agent."""
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass


class Agent:
    def __init__(self, settings: Settings, ledger: SyncLedger, report: Callable[[str], None] = print):
        self.settings, self.ledger, self.report = settings, ledger, report
        self.cli = settings.cli or wandb_cli()
        self._digests: dict[tuple[str, int, int], str] = {}   # (path, size, mtime_ns) -> sha256: hash each content once
        self._waiting: dict[str, str] = {}                    # run path -> what it waits for (logged on change only)
        self.staging = settings.ledger.with_name(settings.ledger.name + ".staging")
        self.stopping = False                                 # SIGTERM, Ctrl-C: finish the sync in flight, start no other

    def say(self, run_path: str, change: str) -> None:
        self.report(f"{now()} {run_path}: {change}")

    def recover(self) -> None:
        """Rows left `syncing` by an agent that died mid-upload: sync them again (W&B upserts by run id: still one run;
        history rows W&B had already taken are sent again, a limit of `wandb sync` that docs/tracking.md states)."""
        for row in self.ledger.rows():
            if row.state == SYNCING:
                self.ledger.update(row, state=SEEN, next_try=0)
                self.say(row.run_path, f"{SYNCING} -> {SEEN} (the last agent stopped during this sync; syncing it again)")

    def scan(self) -> None:
        """One pass over the watched folder."""
        for path in offline_runs(self.settings.watch):
            if self.stopping:
                return
            try:
                self.visit(path)
            except FileNotFoundError:  # the run folder went away while we looked: nothing of ours to do
                continue

    def wait(self, run_path: str, why: str) -> None:
        if self._waiting.get(run_path) != why:
            self._waiting[run_path] = why
            self.say(run_path, f"waiting: {why}")

    def visit(self, path: Path) -> None:
        rel = path.relative_to(self.settings.watch).as_posix()
        stat = path.stat()
        quiet = time.time() - stat.st_mtime
        if quiet < self.settings.grace_s:
            self.wait(rel, f"being written (synced once unchanged for {self.settings.grace_s:.0f} s)")
            return
        cache_key = (rel, stat.st_size, stat.st_mtime_ns)
        digest = self._digests.get(cache_key) or sha256(path)
        self._digests[cache_key] = digest
        latest = self.ledger.latest(rel)
        if latest is not None and latest.sha256 == digest and (latest.state in (*DONE, FAILED) or latest.next_try > time.time()):
            return
        try:
            log = records.read(path)
        except records.LogError as err:
            self.wait(rel, f"unreadable ({err})")
            return
        finished = log.exited and log.intact
        if not finished and quiet < self.settings.partial_after_s:
            self.wait(rel, f"no exit record yet (synced as partial once unchanged for {self.settings.partial_after_s:.0f} s)")
            return
        self._waiting.pop(rel, None)
        run_id = log.run_id or path.stem.removeprefix("run-")  # a log cut before its run record: the file names the id
        if latest is None or (latest.sha256 != digest and latest.state in DONE):
            row = self.ledger.add(rel, run_id, stat.st_size, digest, finished)
            self.say(rel, f"new -> {SEEN} (run {run_id}, {stat.st_size} bytes{'' if finished else ', no exit record'})")
        elif latest.sha256 != digest:  # content changed before it was ever synced: this content replaces it
            row = self.ledger.update(latest, sha256=digest, size=stat.st_size, finished=int(finished), attempts=0,
                                     next_try=0, last_error="", state=SEEN)
        else:
            row = latest
        self.sync(row, path.parent)

    def sync(self, row: Row, run_dir: Path) -> None:
        """`wandb sync` on a private copy of the run folder; the ledger says synced only when `verdict` finds no failure."""
        target = PARTIAL if not row.finished else SYNCED
        copy = self.staging / run_dir.name
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(run_dir, copy, symlinks=True)
        if sha256(copy / Path(row.run_path).name) != row.sha256:  # it changed while we copied: next pass
            shutil.rmtree(copy, ignore_errors=True)
            return
        row = self.ledger.update(row, state=SYNCING, attempts=row.attempts + 1)
        self.say(row.run_path, f"{SEEN} -> {SYNCING} (attempt {row.attempts} of {self.settings.attempts})")
        ok, output = self.run_cli(copy)
        shutil.rmtree(copy, ignore_errors=True)
        url, error = verdict(ok, output, row.run_id, row.finished)
        if not error:
            self.ledger.update(row, state=target, url=url, last_error="", synced_at=now())
            self.say(row.run_path, f"{SYNCING} -> {target} ({url})")
            return
        if row.attempts >= self.settings.attempts:
            self.ledger.update(row, state=FAILED, last_error=error)
            self.say(row.run_path, f"{SYNCING} -> {FAILED} after {row.attempts} attempts; `sync-agent retry {row.run_id}` "
                                   f"tries again: {error.splitlines()[0]}")
            return
        delay = self.settings.backoff_s * 2 ** (row.attempts - 1)
        self.ledger.update(row, state=SEEN, last_error=error, next_try=time.time() + delay)
        self.say(row.run_path, f"{SYNCING} -> {SEEN} (attempt {row.attempts} failed, next in {delay:.0f} s: "
                               f"{error.splitlines()[0]})")

    def run_cli(self, copy: Path) -> tuple[bool, str]:
        """(exit 0, output with the key scrubbed); a sync past `timeout_s` is killed with its process group."""
        command = [*self.cli, "sync", str(copy)]
        try:
            proc = subprocess.Popen(command, cwd=copy.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    errors="replace", start_new_session=True, preexec_fn=_die_with_parent)
        except OSError as err:
            return False, f"cannot run {shlex.join(command[:-1])}: {err}"
        try:
            output, _ = proc.communicate(timeout=self.settings.timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                output, _ = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                output, _ = proc.communicate()
            return False, redact(f"wandb sync timed out after {self.settings.timeout_s:.0f} s\n{output}")
        output = redact(output)  # WANDB_API_KEY (and any other secret variable) -> <NAME>: all the ledger and log see
        return proc.returncode == 0, output if proc.returncode == 0 else f"wandb sync exited {proc.returncode}\n{output}"


def run(settings: Settings, once: bool, wait_lock: bool = False, report: Callable[[str], None] = print) -> int:
    """The agent's life: lock the ledger, recover, then scan every `interval_s` (once: a single pass).

    Returns the number of runs parked `failed` (the CLI exits 1 when there are any)."""
    if not settings.watch.is_dir():
        raise SyncError(f"{settings.watch}: the watched folder does not exist (hint: the folder the jobs write their "
                        "runs into, e.g. <project>/runs)")
    if settings.ledger.resolve().is_relative_to(settings.watch.resolve()):
        raise SyncError(f"{settings.ledger}: the ledger must live outside the watched folder {settings.watch} "
                        "(hint: leave --ledger out: it defaults to a file beside the folder)")
    with lock(settings.ledger, wait_lock), SyncLedger.open(settings.ledger) as ledger:
        agent = Agent(settings, ledger, report)
        previous = {sig: signal.signal(sig, lambda *_: setattr(agent, "stopping", True)) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            report(f"sync agent: watching {settings.watch}, ledger {settings.ledger}, wandb {shlex.join(agent.cli)}")
            agent.recover()
            while True:
                agent.scan()
                deadline = time.monotonic() + settings.interval_s
                while not once and not agent.stopping and time.monotonic() < deadline:
                    time.sleep(min(1.0, settings.interval_s))
                if once or agent.stopping:
                    break
            if agent.stopping:
                report("sync agent: stopped (SIGTERM or Ctrl-C): the sync in flight finished, the next start goes on")
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            shutil.rmtree(agent.staging, ignore_errors=True)
        return sum(1 for row in ledger.rows() if row.state == FAILED)
