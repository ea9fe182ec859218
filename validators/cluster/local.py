"""The `local` backend (the default): the job is a detached process group on this machine.

    backend = LocalBackend(cfg, root)
    job = backend.submit(spec)         # bash runs spec.command() in its own session, output to spec.log_path
    backend.query([job.job_id])        # RUNNING while the process lives; its exit status decides the end
    backend.cancel(job.job_id)         # SIGTERM to the group, SIGKILL after a grace period: CANCELLED

A wrapper shell runs the job and writes its exit status to `<run_dir>/job.exit` (atomically); the
process id and its start time (so a reused pid is not mistaken for the job) go to `<run_dir>/job.pid`.
The job outlives the command that submitted it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from .. import job_ledger as ledger
from ..errors import ClusterError
from .jobs import CANCELLED, COMPLETED, FAILED, RUNNING, JobSpec, Status, Submitted

PID_FILE, EXIT_FILE, CANCEL_FILE = "job.pid", "job.exit", "job.cancel"  # inside the run folder
GRACE_S = 10.0  # between SIGTERM and SIGKILL on cancel: Lightning's own handler gets to stop the loop


def start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks (/proc/<pid>/stat field 22); None when it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return None if fields[0] in "ZX" else fields[19]


def describe_exit(code: int) -> str:
    if code > 128:
        try:
            return f"killed by {signal.Signals(code - 128).name} (exit {code})"
        except ValueError:
            pass
    return f"exit {code}"


class LocalBackend:
    name = "local"

    def __init__(self, cfg: dict[str, Any], root: Path):
        self.cfg, self.root = cfg, root
        self.workdir = str(root)

    def _run_dir(self, job_id: str) -> Path:
        record = ledger.load(ledger.path_of(self.root, self.name, job_id))
        return self.root / record.run_dir

    def command(self, spec: JobSpec) -> str:
        return spec.command()

    def submit(self, spec: JobSpec) -> Submitted:
        job_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)
        run_dir = Path(spec.workdir) / spec.run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        exit_file = shlex.quote(str(run_dir / EXIT_FILE))
        script = (f"{self.command(spec)}\nrc=$?\necho $rc > {exit_file}.tmp && mv {exit_file}.tmp {exit_file}\nexit $rc\n")
        with open(Path(spec.workdir) / spec.log_path, "ab") as log:
            try:
                proc = subprocess.Popen(["bash", "-c", script], cwd=spec.workdir, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as err:
                raise ClusterError(f"local: cannot start bash: {err}", "the local backend needs bash on PATH") from err
        ticks = start_ticks(proc.pid)
        (run_dir / PID_FILE).write_text(json.dumps({"pid": proc.pid, "start_ticks": ticks}) + "\n", encoding="utf-8")
        return Submitted(job_id)

    def query(self, job_ids: list[str]) -> dict[str, Status]:
        out: dict[str, Status] = {}
        for job_id in job_ids:
            run_dir = self._run_dir(job_id)
            exit_path, pid_path = run_dir / EXIT_FILE, run_dir / PID_FILE
            if exit_path.is_file():
                code = int(exit_path.read_text().strip() or 1)
                if (run_dir / CANCEL_FILE).is_file():
                    out[job_id] = Status(CANCELLED, "cancelled", describe_exit(code))
                else:
                    out[job_id] = Status(COMPLETED if code == 0 else FAILED, "exited", describe_exit(code))
                continue
            if not pid_path.is_file():
                continue  # submitted a moment ago
            info = json.loads(pid_path.read_text(encoding="utf-8"))
            if info["start_ticks"] is not None and start_ticks(info["pid"]) == info["start_ticks"]:
                out[job_id] = Status(RUNNING, "running", f"pid {info['pid']}")
            elif (run_dir / CANCEL_FILE).is_file():
                out[job_id] = Status(CANCELLED, "cancelled", "the process group was killed")
            else:
                out[job_id] = Status(FAILED, "vanished", f"pid {info['pid']} ended without an exit status "
                                                         "(the wrapper shell was killed, e.g. with SIGKILL)")
        return out

    def cancel(self, job_id: str) -> None:
        run_dir = self._run_dir(job_id)
        info = json.loads((run_dir / PID_FILE).read_text(encoding="utf-8"))
        (run_dir / CANCEL_FILE).write_text(ledger.now() + "\n", encoding="utf-8")
        pid = info["pid"]
        if start_ticks(pid) != info["start_ticks"]:
            return  # already over
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + GRACE_S
        while time.monotonic() < deadline and start_ticks(pid) == info["start_ticks"]:
            time.sleep(0.2)
        if start_ticks(pid) == info["start_ticks"]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
