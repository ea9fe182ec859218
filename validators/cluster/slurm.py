"""The `slurm` job backend: `sbatch` of a script made from configs/cluster/slurm.yaml, state from the scheduler.

    backend = SlurmBackend(config.load(root, "slurm"), root)
    print(backend.script(spec))          # the batch script; submit() keeps it as <run_dir>/job.sbatch
    job = backend.submit(spec)           # sbatch --parsable -> Submitted("42")
    backend.query(["42", "43"])          # {"42": Status("RUNNING", "RUNNING", ""), ...}
    backend.cancel("42")                 # scancel 42

The script runs `srun python scripts/train.py ...`: srun starts one task per device and Lightning reads
SLURM's environment (ranks, world size; trainer.devices and trainer.num_nodes must match the config).
`#SBATCH --signal=SIGUSR1@N` and `--requeue` hand preemption and time limits to Lightning's own SLURM
support: on the signal every rank saves `<run_dir>/hpc_ckpt_N.ckpt` and rank 0 runs `scontrol requeue`;
the requeued job runs the same script (same job id, same run folder) and fit() resumes from that file.
`--open-mode=append` keeps every start of a requeued job in one log.

State: ONE `squeue` for all the ids asked; an id squeue no longer lists (it has ended) is looked up with
one `sacct --parsable2` when the cluster keeps accounting, else with `scontrol show job ID`. A scheduler
command that fails or times out raises TransientError (the poll loop retries with a bound).
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

from ..errors import ClusterError, TransientError
from .jobs import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING, TIMEOUT, JobSpec, Status, Submitted

COMMAND_TIMEOUT_S = 30
REQUEUE_ENV = "HEPHAESTUS_REQUEUE"  # "off": the project's train.py ignores SIGUSR1 and turns Lightning's auto-requeue off
SEP = "|"  # squeue's field separator: no job id, state or reason contains it
NATIVE = {  # every job state squeue, sacct and scontrol print (squeue(1) JOB STATE CODES) -> the normalised state
    **dict.fromkeys(("PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SPECIAL_EXIT",
                     "SUSPENDED", "PREEMPTED"), PENDING),
    **dict.fromkeys(("RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING", "STOPPED"), RUNNING),
    "COMPLETED": COMPLETED,
    **dict.fromkeys(("FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"), FAILED),
    **dict.fromkeys(("CANCELLED", "REVOKED"), CANCELLED),
    "TIMEOUT": TIMEOUT,
}
UNKNOWN_JOB = re.compile(r"invalid job id", re.IGNORECASE)
SCONTROL_FIELD = re.compile(r"(?:^|\s)(JobId|JobState|Reason|ExitCode|Restarts)=(\S*)")


def normalise(native: str, message: str = "") -> Status:
    """A Status from SLURM's state word. `CANCELLED by 0` is CANCELLED; an unknown word (a newer SLURM, or a
    truncated `OUT_OF_ME+` from a command without --parsable2) is PENDING, never terminal, and says so."""
    word = native.split()[0] if native.strip() else ""
    state = NATIVE.get(word)
    if state is None:
        note = f"unknown SLURM state {native!r}; the job is treated as not finished"
        return Status(PENDING, native, f"{note}; {message}" if message else note)
    return Status(state, native, message)


def _exit_message(exit_code: str, reason: str, restarts: str = "0") -> str:
    """`exit code 1`, `signal 15`, the reason (`NonZeroExitCode`) and `requeued 2x`, joined; '' when none applies."""
    parts = []
    code, _, sig = exit_code.partition(":")
    if code not in ("", "0"):
        parts.append(f"exit code {code}")
    if sig not in ("", "0"):
        parts.append(f"signal {sig}")
    if reason and reason not in ("None", "(null)"):
        parts.append(reason)
    if restarts not in ("", "0"):
        parts.append(f"requeued {restarts}x")
    return "; ".join(parts)


def parse_squeue(text: str) -> dict[str, Status]:
    """`squeue --noheader --format=%i|%T|%r` lines -> {job id: Status}; the reason is the message."""
    found = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        job_id, native, reason = (line.split(SEP) + ["", ""])[:3]
        found[job_id.strip()] = normalise(native.strip(), _exit_message("", reason.strip()))
    return found


def parse_sacct(text: str) -> dict[str, Status]:
    """`sacct --parsable2 --noheader -X -o JobID,State,ExitCode,Reason` lines -> {job id: Status}.

    --parsable2 prints whole words (`OUT_OF_MEMORY`, `CANCELLED by 0`), where the table format cuts
    them to 10 characters (`OUT_OF_ME+`). The last line of a job wins (a requeued job has several).
    """
    found = {}
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) < 3 or not fields[0].strip():
            continue
        job_id, native, exit_code = (f.strip() for f in fields[:3])
        reason = fields[3].strip() if len(fields) > 3 else ""
        found[job_id] = normalise(native, _exit_message(exit_code, reason))
    return found


def parse_scontrol(text: str) -> Status | None:
    """`scontrol show job ID` (either layout) -> its Status; None when the text names no JobState."""
    fields = dict(SCONTROL_FIELD.findall(text))
    if "JobState" not in fields:
        return None
    return normalise(fields["JobState"], _exit_message(fields.get("ExitCode", ""), fields.get("Reason", ""),
                                                      fields.get("Restarts", "0")))


def _run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a SLURM command: ClusterError when it is not on PATH, TransientError when it does not answer in time."""
    timeout = COMMAND_TIMEOUT_S
    try:
        return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as err:
        raise ClusterError(f"{argv[0]}: not found on PATH", "run this on a login node of the SLURM cluster") from err
    except subprocess.TimeoutExpired as err:
        raise TransientError(f"{shlex.join(argv)}: no answer within {timeout:g} s", "slurmctld may be busy") from err


def _last_line(done: subprocess.CompletedProcess) -> str:
    lines = [line for line in (done.stderr or done.stdout or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else f"exit status {done.returncode}"


class SlurmBackend:
    """Jobs on a SLURM cluster, submitted from a login node; `root` is the project on the nodes' shared storage."""

    name = "slurm"

    def __init__(self, cfg: dict[str, Any], root: Path):
        self.cfg = cfg
        self.root = Path(root)
        self.workdir = str(self.root)
        self._accounting: bool | None = None

    def directives(self, spec: JobSpec) -> list[str]:
        """The #SBATCH lines: the job, its log (appended to by every start), resources, and the requeue signal."""
        c = self.cfg
        options = [
            ("job-name", spec.name), ("chdir", spec.workdir), ("output", spec.log_path), ("open-mode", "append"),
            ("partition", c["partition"]), ("nodes", c["nodes"]), ("ntasks-per-node", c["ntasks_per_node"]),
            ("gpus-per-node", c["gpus_per_node"]), ("cpus-per-task", c["cpus_per_task"]), ("mem", c["mem"]),
            ("time", c["time"]), ("account", c["account"]), ("qos", c["qos"]),
            ("signal", f"SIGUSR1@{c['requeue_signal_s']}" if c["requeue_signal_s"] else ""),
        ]
        lines = [f"#SBATCH --{key}={shlex.quote(str(value))}" for key, value in options if value not in ("", 0, None)]
        return lines + ["#SBATCH --requeue"]

    def launcher(self) -> str:
        """srun: one task per device from the allocation; a failed task ends the others (no hanging DDP rank)."""
        cpus = self.cfg["cpus_per_task"]  # srun of SLURM 22.05+ does not inherit sbatch's --cpus-per-task
        return "srun --kill-on-bad-exit=1" + (f" --cpus-per-task={cpus}" if cpus > 1 else "")

    def requeue_bound(self) -> list[str]:
        """After `max_requeues` starts, tell train.py (REQUEUE_ENV) to ignore the signal: Lightning's auto-requeue has
        no bound of its own, so a job that never fits its time limit would be requeued forever."""
        if not self.cfg["requeue_signal_s"]:
            return []
        return [f'if [ "${{SLURM_RESTART_COUNT:-0}}" -ge {self.cfg["max_requeues"]} ]; then export {REQUEUE_ENV}=off; fi']

    def command(self, spec: JobSpec) -> str:
        """The script's shell lines after its directives, as one line: what the ledger records."""
        return spec.command(self.launcher())

    def script(self, spec: JobSpec) -> str:
        """The sbatch script of `spec`: directives, the prologue (cd, .venv, exports), a start line, srun training."""
        start = ('echo "hephaestus: job $SLURM_JOB_ID started $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)'
                 ' (restart ${SLURM_RESTART_COUNT:-0})"')
        return "\n".join([
            "#!/bin/bash",
            f"# {spec.name}: generated by the slurm backend from configs/cluster/slurm.yaml; submitted with sbatch",
            *self.directives(spec),
            "set -e",
            *spec.prologue(),
            *self.requeue_bound(),
            start,
            spec.train_command(self.launcher()),
        ]) + "\n"

    def submit(self, spec: JobSpec) -> Submitted:
        """Write <run_dir>/job.sbatch (kept as the record of what ran) and `sbatch --parsable` it."""
        run_dir = self.root / spec.run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / "job.sbatch"
        path.write_text(self.script(spec), encoding="utf-8")
        try:
            done = _run(["sbatch", "--parsable", str(path)], cwd=self.root)
        except TransientError as err:  # it may have been queued: a blind retry could submit it twice
            raise ClusterError(err.problem, "see `squeue --me` before submitting again") from err
        job_id = done.stdout.strip().split(";")[0]
        if done.returncode != 0 or not job_id:
            raise ClusterError(f"sbatch refused {path.relative_to(self.root)}: {_last_line(done)}",
                               "check partition, account, qos, time and the resources in configs/cluster/slurm.yaml"
                               " against `sinfo` and your allocation")
        return Submitted(job_id)

    def accounting(self) -> bool:
        """Whether the cluster keeps job accounting (then sacct knows ended jobs); asked once per backend."""
        if self._accounting is None:
            done = _run(["scontrol", "show", "config"])
            if done.returncode != 0:
                raise TransientError(f"scontrol show config: {_last_line(done)}", "is slurmctld up? (scontrol ping)")
            match = re.search(r"^AccountingStorageType\s*=\s*(\S+)", done.stdout, re.MULTILINE)
            self._accounting = bool(match) and match.group(1) != "accounting_storage/none"
        return self._accounting

    def query(self, job_ids: list[str]) -> dict[str, Status]:
        """One squeue for every id; the ended ones from one sacct (accounting) or scontrol show job each."""
        if not job_ids:
            return {}
        argv = ["squeue", "--noheader", f"--jobs={','.join(job_ids)}", f"--format=%i{SEP}%T{SEP}%r"]
        done = _run(argv)
        if done.returncode != 0 and not UNKNOWN_JOB.search(done.stderr):  # squeue of ended ids alone says "Invalid job id"
            raise TransientError(f"squeue: {_last_line(done)}", "is slurmctld up? (scontrol ping)")
        found = {k: v for k, v in parse_squeue(done.stdout if done.returncode == 0 else "").items() if k in job_ids}
        ended = [i for i in job_ids if i not in found]
        if ended and self.accounting():
            done = _run(["sacct", "--parsable2", "--noheader", "-X", f"--jobs={','.join(ended)}",
                         "--format=JobID,State,ExitCode,Reason"])
            if done.returncode != 0:
                raise TransientError(f"sacct: {_last_line(done)}", "is slurmdbd up?")
            found.update({k: v for k, v in parse_sacct(done.stdout).items() if k in ended})
        elif ended:
            for job_id in ended:
                done = _run(["scontrol", "show", "job", job_id])
                if done.returncode != 0:
                    if UNKNOWN_JOB.search(done.stderr):  # purged from slurmctld (MinJobAge passed): left out
                        continue
                    raise TransientError(f"scontrol show job {job_id}: {_last_line(done)}", "is slurmctld up? (scontrol ping)")
                status = parse_scontrol(done.stdout)
                if status is not None:
                    found[job_id] = status
        return found

    def cancel(self, job_id: str) -> None:
        done = _run(["scancel", job_id])
        if done.returncode != 0:
            raise ClusterError(f"scancel {job_id}: {_last_line(done)}", "see its state with `squeue --jobs=" + job_id + "`")
