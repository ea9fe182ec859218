"""Stage D2 and D4 costs on this machine: the `.venv` build (time, size, files), and for each backend
the seconds from `submit` to the training process starting and from its exit to the ledger saying
COMPLETED; plus the scheduler queries a job costs per hour of waiting.

    PYTHONPATH=. python benchmarks/jobs_bench.py [--rounds 3] [--backends local slurm] [--keep DIR]

Rounds alternate between the backends (local, slurm, local, slurm, ...), each a 1-epoch job of a
generated tabular project. Times are wall clock, watched from here: the training process is the
`python scripts/train.py` whose environment names the job's run folder (polled every 20 ms in
/proc), the ledger is polled every 20 ms. SLURM needs a running cluster (.ci/slurm-up).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import copier
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from validators.cluster import config, poll  # noqa: E402
from validators.cluster.jobs import RUNNING, Status  # noqa: E402
from validators.job_ledger import JobRecord  # noqa: E402


def run(cmd: list[str], cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "WANDB_MODE")}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{(done.stdout + done.stderr)[-4000:]}")
    return done.stdout + done.stderr


def train_process_seen(run_dir: str) -> bool:
    marker = f"HEPHAESTUS_RUN_DIR={run_dir}".encode()
    for proc in Path("/proc").iterdir():
        try:
            if marker in (proc / "environ").read_bytes() and b"scripts/train.py" in (proc / "cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


def one_job(root: Path, backend: str, name: str) -> dict[str, float]:
    """Submit a 1-epoch job and watch it: when the run folder appears (the review passed, the backend is called),
    the training process starts and ends, and the ledger says COMPLETED."""
    seen: dict[str, float] = {}
    before = set((root / "jobs").glob("*.yaml")) if (root / "jobs").is_dir() else set()
    runs_before = set((root / "runs").iterdir()) if (root / "runs").is_dir() else set()
    stop = threading.Event()

    def watch() -> None:
        path, run_dir = None, ""
        while not stop.is_set():
            now = time.perf_counter()
            if not run_dir and (root / "runs").is_dir():
                new_runs = [p for p in set((root / "runs").iterdir()) - runs_before if p.is_dir() and not p.is_symlink()]
                if new_runs:  # submit.py makes the run folder after the review, right before the backend submits
                    seen["submit"], run_dir = now, f"runs/{new_runs[0].name}"
            if run_dir:
                alive = train_process_seen(run_dir)
                if alive and "start" not in seen:
                    seen["start"] = now
                if not alive and "start" in seen and "exit" not in seen:
                    seen["exit"] = now
            if path is None:
                new = set((root / "jobs").glob("*.yaml")) - before if (root / "jobs").is_dir() else set()
                path = new.pop() if new else None
            if path is not None and yaml.safe_load(path.read_text())["history"][-1]["state"] == "COMPLETED":
                seen["completed"] = now
                return
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    start = time.perf_counter()
    thread.start()
    run([sys.executable, "-m", "validators", "submit", "--backend", backend, "--wait", "--name", name, "--epochs", "1"], root)
    thread.join(timeout=30)
    stop.set()
    return {"review_s": seen["submit"] - start, "to_start_s": seen["start"] - seen["submit"],
            "exit_to_ledger_s": seen["completed"] - seen["exit"], "train_s": seen["exit"] - seen["start"]}


def queries_per_hour(backend: str) -> int:
    """The real polling loop over one hour of a job that keeps RUNNING, at the shipped config's intervals."""
    cfg = config.load(ROOT / "template", backend)  # the shipped configs/cluster/<backend>.yaml, defaults filled

    class Always:
        name = backend

        def query(self, ids: list[str]) -> dict[str, Status]:
            return dict.fromkeys(ids, Status(RUNNING, RUNNING))

    clock = [0.0]
    counter = poll.Counter()
    rec = JobRecord(backend, "1", "n", "c", "x", False, "h", "r", "r/l")
    with tempfile.TemporaryDirectory() as tmp:
        poll.wait(Path(tmp), Always(), [rec], limit_s=3600, initial_s=cfg["poll_initial_s"], max_s=cfg["poll_max_s"],
                  clock=lambda: clock[0], sleep=lambda s: clock.__setitem__(0, clock[0] + s), report=lambda _: None,
                  counter=counter)
    return counter.queries


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", nargs="+", default=["local", "slurm"])
    parser.add_argument("--keep", type=Path)
    args = parser.parse_args()
    where = args.keep or Path(tempfile.mkdtemp(prefix="jobs-bench-"))
    root = where / "bench_project"
    copier.run_copy(str(ROOT), root, data={"project_name": "bench_project", "task_family": "tabular_regression"},
                    defaults=True, unsafe=True, vcs_ref="HEAD", quiet=True)
    run([sys.executable, "-m", "validators", "finish-setup"], root)
    start = time.perf_counter()
    run([sys.executable, "-m", "validators", "cluster-venv"], root)
    build_s = time.perf_counter() - start
    files = [p for p in (root / ".venv").rglob("*") if p.is_file() and not p.is_symlink()]
    print(f".venv: built in {build_s:.1f} s; {sum(p.stat().st_size for p in files) / 2**20:.0f} MiB in {len(files)} files")
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "b"]):
        run(cmd, root)
    results: dict[str, list[dict[str, float]]] = {b: [] for b in args.backends}
    for n in range(args.rounds):
        for backend in args.backends:
            results[backend].append(one_job(root, backend, f"r{n}"))
            print(backend, json.dumps({k: round(v, 2) for k, v in results[backend][-1].items()}))
    print("\n| backend | review before compute (s) | submit -> training process starts (s) | training exit -> ledger COMPLETED (s) "
          "| queries / job / hour of waiting |\n|---|---|---|---|---|")
    for backend, rows in results.items():
        cells = []
        for key in ("review_s", "to_start_s", "exit_to_ledger_s"):
            values = [r[key] for r in rows]
            cells.append(f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})")
        print(f"| {backend} | {' | '.join(cells)} | {queries_per_hour(backend)} |")
    if not args.keep:
        shutil.rmtree(where, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
