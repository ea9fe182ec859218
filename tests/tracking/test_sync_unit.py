"""deploy/sync-agent/hephaestus-sync.service: systemd accepts it, and its ExecStart runs the agent as systemd would."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jinja2

from validators.tracking.sync_ledger import SyncLedger, default_path

from ..helpers import TEMPLATE
from ..helpers.wandb_runs import age, offline_run
from .test_sync_agent import FAKE

UNIT = TEMPLATE / "template/deploy/sync-agent/hephaestus-sync.service.jinja"


def rendered(tmp_path: Path) -> Path:
    unit = tmp_path / "hephaestus-sync.service"
    unit.write_text(jinja2.Template(UNIT.read_text(), keep_trailing_newline=True).render(project_name="demo_project",
                                                                                          accelerator="cpu"))
    return unit


def test_systemd_accepts_the_unit_without_a_warning(tmp_path):
    done = subprocess.run(["systemd-analyze", "verify", str(rendered(tmp_path))], capture_output=True, text=True)
    assert done.returncode == 0
    assert [line for line in (done.stdout + done.stderr).splitlines() if "hephaestus-sync" in line] == []


def exec_start(unit: Path) -> list[str]:
    """The ExecStart argv as systemd builds it: its quoting, and `$$` for a literal `$`."""
    line = re.search(r"^ExecStart=(.+)$", unit.read_text(), re.MULTILINE).group(1)
    return shlex.split(line.replace("$$", "$"))


def test_exec_start_runs_the_agent_on_the_project_of_the_environment_file_and_stops_on_sigterm(tmp_path):
    unit = rendered(tmp_path)
    assert re.search(r"^EnvironmentFile=%h/\.config/hephaestus/demo_project-sync\.env$", unit.read_text(), re.MULTILINE)
    project = tmp_path / "shared" / "demo_project"
    (project / ".venvs/debug-cpu/bin").mkdir(parents=True)
    python = project / ".venvs/debug-cpu/bin/python"   # the project venv the unit runs by default: this one, in disguise
    python.write_text(f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")
    python.chmod(0o755)
    (project / "validators").symlink_to(TEMPLATE / "validators")
    shutil.copytree(offline_run(tmp_path / "made"), project / "runs/job/wandb/offline-run-x-1")
    age(project / "runs", 3600)
    fake = tmp_path / "wandb"
    fake.write_text(FAKE.format(python=sys.executable))
    fake.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "HEPHAESTUS_PROJECT": str(project), "WANDB_API_KEY": "k" * 40,
           "WANDB_CLI": str(fake), "FAKE_WANDB_CALLS": str(tmp_path / "calls.jsonl")}   # what the EnvironmentFile sets
    agent = subprocess.Popen(exec_start(unit), env=env, cwd="/", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ledger = default_path(project / "runs")
    deadline = time.monotonic() + 60
    while agent.poll() is None and time.monotonic() < deadline and not (ledger.exists() and _states(ledger) == ["synced"]):
        time.sleep(0.2)
    agent.send_signal(signal.SIGTERM)                   # `systemctl --user stop`: KillMode=mixed, SIGTERM to the agent
    out, _ = agent.communicate(timeout=30)
    assert agent.returncode == 0, out
    assert _states(ledger) == ["synced"]
    assert out.splitlines()[0] == f"sync agent: watching runs, ledger {ledger}, wandb {fake}"
    assert out.splitlines()[-1] == "sync agent: stopped (SIGTERM or Ctrl-C): the sync in flight finished, the next start goes on"


def _states(ledger: Path) -> list[str]:
    with SyncLedger.open(ledger) as db:
        return [row.state for row in db.rows()]
