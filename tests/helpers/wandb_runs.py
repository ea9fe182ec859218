"""Real W&B offline runs and the real `wandb sync`, for the tests of the sync path (D5).

    run_dir = offline_run(tmp / "runs", config={"lr": 0.1}, rows=5)    # wandb/offline-run-<time>-<id>/
    crashed = offline_run(tmp / "c", rows=40, big=2000, kill_after=1)  # SIGKILLed after wandb-core flushed some blocks
    live = LiveRun(tmp / "l", stream_bytes=2000); live.folder; live.finish()   # appends a row every 0.1 s until told
    with WandbServer(api_key=KEY) as wb:
        done = wandb_sync(run_dir, wb.url, KEY, home=tmp / "home")    # CompletedProcess, text
    cut(run_file(run_dir), torn=True)                                   # the run as a crash leaves it
    age(folder, 3600)                                                   # unchanged for an hour, without sleeping

All run this interpreter's wandb (the test environment pins the version generated projects use) in a
clean environment: HOME in the test's folder, so no ~/.netrc, ~/.config/wandb or WANDB_* of the caller
leaks in, and the CLI's own `wandb/debug-cli.*.log` lands in `cwd`, not in the run folder. Row i logs
`row(i)`; `big` adds a blob of that many bytes to each row, so that wandb-core, which flushes its log
every 32 KiB, writes as it goes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from validators.tracking.records import read

WANDB_CLI = Path(sys.executable).with_name("wandb")
BIN = str(Path(sys.executable).parent)

WRITER = """
import json, os, signal, sys, time
import wandb
spec = json.loads(sys.argv[1])
run = wandb.init(mode="offline", dir=spec["dir"], project=spec["project"], config=spec["config"],
                 settings=wandb.Settings(console="off"))  # as the template logs: no output.log
blob = {"blob": "y" * spec["big"]} if spec["big"] else {}
for i in range(spec["rows"]):
    run.log({"loss": 1.0 / (i + 1), "acc": i / 10, **blob})
print(run.dir.rsplit("/files", 1)[0], flush=True)
if spec["kill_after"] is not None:  # a crash: no exit record, and whatever the writer had not flushed is lost
    time.sleep(spec["kill_after"])
    os.kill(os.getpid(), signal.SIGKILL)
i = spec["rows"]
while spec["live"] and not os.path.exists(os.path.join(spec["dir"], "finish")):
    if blob:  # a writer that keeps appending
        run.log({"loss": 1.0 / (i + 1), "acc": i / 10, **blob})
        i += 1
    time.sleep(0.1)
run.finish()
"""


def row(i: int) -> dict[str, float]:
    """The user's values of the i-th row an `offline_run` logs."""
    return {"loss": 1.0 / (i + 1), "acc": i / 10}


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", **extra}


def _writer(root: Path, project: str, config: dict[str, Any] | None, rows: int, big: int, kill_after: float | None,
            live: bool) -> tuple[list[str], dict[str, str]]:
    root.mkdir(parents=True, exist_ok=True)
    spec = {"dir": str(root), "project": project, "config": config or {}, "rows": rows, "big": big,
            "kill_after": kill_after, "live": live}
    return [sys.executable, "-c", WRITER, json.dumps(spec)], clean_env(root / ".home")


def offline_run(root: Path, *, project: str = "hephaestus", config: dict[str, Any] | None = None, rows: int = 5,
                big: int = 0, kill_after: float | None = None) -> Path:
    """A real offline run under `root` (its `offline-run-*` folder); `kill_after`: SIGKILL the writer that
    many seconds after the last row instead of finish()."""
    argv, env = _writer(root, project, config, rows, big, kill_after, live=False)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode not in (0, -9) or (done.returncode == -9) != (kill_after is not None):
        raise AssertionError(f"the offline run failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    found = sorted((root / "wandb").glob("offline-run-*"))
    if len(found) != 1:
        raise AssertionError(f"expected one offline run under {root}, found {found}")
    return found[0]


class LiveRun:
    """A run that has logged its rows and keeps its writer alive (appending rows of `stream_bytes`) until `finish()`."""

    def __init__(self, root: Path, rows: int = 5, stream_bytes: int = 0, project: str = "hephaestus"):
        self.root = root
        argv, env = _writer(root, project, {"lr": 0.1}, rows, stream_bytes, None, live=True)
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.folder = Path(self.proc.stdout.readline().strip())

    def finish(self) -> None:
        (self.root / "finish").touch()
        self.proc.communicate(timeout=120)
        (self.root / "finish").unlink()


def wandb_sync(run_dir: Path, base_url: str, api_key: str | None, *args: str, home: Path, cwd: Path | None = None,
               timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """`wandb sync [args] <run_dir>` against `base_url`; `api_key` None: no key at all; `env`: more WANDB_* settings."""
    extra = {"WANDB_BASE_URL": base_url, **env} | ({"WANDB_API_KEY": api_key} if api_key is not None else {})
    return subprocess.run([str(WANDB_CLI), "sync", *args, str(run_dir)], env=clean_env(home, **extra), cwd=cwd or home,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def cut(path: Path, *, torn: bool) -> int:
    """Cut a finished run's `.wandb` file just before its exit record, as a crash leaves it: `torn` mid-record
    (the writer died inside a write), else at a record boundary (it died between writes). Returns the new size."""
    data = path.read_bytes()
    probe = path.with_name(path.name + ".probe")
    try:
        def log(size: int) -> Any:
            probe.write_bytes(data[:size])
            return read(probe)

        size = len(data)
        while log(size).exited:
            size -= 1
        while not torn and not log(size).intact:
            size -= 1
    finally:
        probe.unlink(missing_ok=True)
    path.write_bytes(data[:size])
    return size


def age(path: Path, seconds: float) -> None:
    """Make every file under `path` look unchanged for `seconds` (the agent's quiet periods, without sleeping)."""
    stamp = time.time() - seconds
    for file in [path, *path.rglob("*")]:
        os.utime(file, (stamp, stamp))
