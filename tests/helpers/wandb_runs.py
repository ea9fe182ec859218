"""Real W&B offline runs for the tracking tests, written by wandb itself (no hand-made .wandb files).

    finished = make_run(tmp / "runs/a", rows=5)             # the folder offline-run-*/ with its exit record
    crashed = make_run(tmp / "runs/b", mode="crash")         # SIGKILLed before finish(): no exit record
    torn = make_run(tmp / "runs/t", mode="crash", rows=40, big=2000)  # killed after wandb-core flushed 32 KiB blocks
    live = LiveRun(tmp / "runs/c", stream_bytes=2000)          # appends a row every 0.1 s until finish()

Each run logs `loss = 1 / (step + 1)` and `acc = step / 10` for `rows` steps (plus a `blob` of `big` bytes, so
that wandb-core, which flushes its log every 32 KiB, writes as it goes), with config {"lr": 0.1, "layers": [1, 2]}.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = r"""
import os, sys, time, wandb
out, mode, rows, big = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
run = wandb.init(mode="offline", dir=out, project="standin-project", config={"lr": 0.1, "layers": [1, 2]})
for step in range(rows):
    run.log({"loss": 1.0 / (step + 1), "acc": step / 10, **({"blob": "y" * big} if big else {})})
print(run.dir.rsplit("/files", 1)[0], flush=True)
if mode == "crash":
    time.sleep(1.0)  # let wandb-core write what it has, then die without an exit record
    os.kill(os.getpid(), 9)
step = rows
while mode == "live" and not os.path.exists(os.path.join(out, "finish")):
    if big:  # a writer that keeps appending: wandb-core flushes its log every 32 KiB, so rows of `big` bytes show up
        run.log({"loss": 1.0 / (step + 1), "acc": step / 10, "blob": "y" * big})
        step += 1
    time.sleep(0.1)
run.finish()
"""


def env(home: Path) -> dict[str, str]:
    """A clean environment: offline, a private HOME (no ~/.netrc, no settings), no key."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    return {**keep, "HOME": str(home), "WANDB_MODE": "offline", "WANDB_SILENT": "true"}


def _start(out: Path, mode: str, rows: int, big: int) -> subprocess.Popen[str]:
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(out), mode, str(rows), str(big)], env=env(out),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def make_run(out: Path, mode: str = "ok", rows: int = 5, big: int = 0) -> Path:
    """A run written into `out/wandb/offline-run-*/`; `mode` "crash" leaves it without an exit record."""
    proc = _start(out, mode, rows, big)
    stdout, stderr = proc.communicate(timeout=120)
    if mode == "ok" and proc.returncode != 0:
        raise AssertionError(f"the offline run failed ({proc.returncode}):\n{stderr}")
    return Path(stdout.strip().splitlines()[-1])


class LiveRun:
    """A run that has logged its rows and keeps its writer alive until `finish()`."""

    def __init__(self, out: Path, rows: int = 5, stream_bytes: int = 0):
        self.out = out
        self.proc = _start(out, "live", rows, stream_bytes)
        assert self.proc.stdout is not None
        self.folder = Path(self.proc.stdout.readline().strip())

    def finish(self) -> None:
        (self.out / "finish").touch()
        self.proc.communicate(timeout=120)
        (self.out / "finish").unlink()


def age(path: Path, seconds: float) -> None:
    """Make every file under `path` look unchanged for `seconds` (the agent's quiet periods, without sleeping)."""
    stamp = time.time() - seconds
    for file in [path, *path.rglob("*")]:
        os.utime(file, (stamp, stamp))
