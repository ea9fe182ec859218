"""Real W&B offline runs and the real `wandb sync`, for the tests of the sync path (D5).

    run_dir = offline_run(tmp / "runs", config={"lr": 0.1}, rows=5)    # wandb/offline-run-<time>-<id>/
    with WandbServer(api_key=KEY) as wb:
        done = wandb_sync(run_dir, wb.url, KEY, home=tmp / "home")    # CompletedProcess, text
    cut(run_file(run_dir), torn=True)                                   # the run as a crash leaves it

Both run this interpreter's wandb (the test environment pins the version generated projects use) in a
clean environment: HOME in the test's folder, so no ~/.netrc, ~/.config/wandb or WANDB_* of the caller
leaks in, and the CLI's own `wandb/debug-cli.*.log` lands in `cwd`, not in the run folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from validators.tracking.records import read

WANDB_CLI = Path(sys.executable).with_name("wandb")
BIN = str(Path(sys.executable).parent)

WRITER = """
import json, os, signal, sys, time
import wandb
spec = json.loads(sys.argv[1])
run = wandb.init(mode="offline", dir=spec["dir"], project=spec["project"], config=spec["config"])
for i in range(spec["rows"]):
    run.log({"loss": 1.0 / (i + 1), "acc": i / 10})
if spec["kill_after"] is not None:  # a crash: no exit record, and whatever the writer had not flushed is lost
    time.sleep(spec["kill_after"])
    os.kill(os.getpid(), signal.SIGKILL)
run.finish()
"""


def row(i: int) -> dict[str, float]:
    """The user's values of the i-th row an `offline_run` logs."""
    return {"loss": 1.0 / (i + 1), "acc": i / 10}


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", **extra}


def offline_run(root: Path, *, project: str = "hephaestus", config: dict[str, Any] | None = None, rows: int = 5,
                kill_after: float | None = None) -> Path:
    """A real offline run under `root` (its `offline-run-*` folder); `kill_after`: SIGKILL the writer that
    many seconds after the last row instead of finish()."""
    root.mkdir(parents=True, exist_ok=True)
    spec = {"dir": str(root), "project": project, "config": config or {}, "rows": rows, "kill_after": kill_after}
    done = subprocess.run([sys.executable, "-c", WRITER, json.dumps(spec)], env=clean_env(root / ".home"),
                          capture_output=True, text=True, timeout=120)
    if done.returncode not in (0, -9) or (done.returncode == -9) != (kill_after is not None):
        raise AssertionError(f"the offline run failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    found = sorted((root / "wandb").glob("offline-run-*"))
    if len(found) != 1:
        raise AssertionError(f"expected one offline run under {root}, found {found}")
    return found[0]


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

