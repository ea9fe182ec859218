"""The air-gapped research loop of a generated project, step by step, through its own nox sessions.

    loop = Loop.generate(tmp / "demo_project", wandb=wb, github=gh)   # rendered, committed, SLURM polls fast
    loop.step("cluster_venv")                           # D2: .venv (relocatable, cache-free)
    job = loop.submit()                                 # D4: sbatch on the local SLURM cluster, --wait: COMPLETED
    loop.sync()                                         # D5: the sync agent, until the run is synced
    loop.step("results", job, "--pr", "5")              # D6: curves, metrics, the pull-request comment
    loop.step("note", job)                              # D7: notes/<date>-<slug>.md
    loop.times                                          # [(step, seconds)], what benchmarks/loop_bench.py prints

tests/tracking/test_loop_e2e.py asserts on every step; benchmarks/loop_bench.py times them. The W&B
and GitHub services are the stand-ins (tests/helpers/wandb_server.py, github_server.py), reached as
the real clients reach them: WANDB_BASE_URL, GITHUB_API_URL. The project venv is this interpreter.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import git, render, write_file

KEY = "local-" + "7" * 40
TOKEN = "ghp_" + "L00pT0k3n" * 4
SLURM_FAST = {"poll_initial_s": 1, "poll_max_s": 2}
TRAIN = ("--epochs", "2", "data.batch_size=32", "trainer.log_every_n_steps=1")  # several steps an epoch on the mini data


@dataclass
class Loop:
    root: Path
    env: dict[str, str]
    times: list[tuple[str, float]] = field(default_factory=list)

    @classmethod
    def generate(cls, root: Path, wandb_url: str, github_url: str, repository: str = "owner/repo") -> Loop:
        render(root, task_family="tabular_classification", logger="wandb")
        python = write_file(root / ".venvs/debug-cpu/bin/python", f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        python.chmod(0o755)                     # the project venv: this interpreter (nox -s setup would build one)
        slurm = root / "configs/cluster/slurm.yaml"
        text = slurm.read_text(encoding="utf-8")
        for key, value in SLURM_FAST.items():
            text = re.sub(rf"^{key}: *\S+", f"{key}: {json.dumps(value)}", text, count=1, flags=re.MULTILINE)
        slurm.write_text(text, encoding="utf-8")
        git(root, "init", "-q")
        git(root, "add", "-A")
        git(root, "commit", "-qm", "generated; SLURM polls every 1-2 s")
        keep = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "WANDB_MODE") and not k.startswith(("GITHUB_", "WANDB_"))}
        env = {**keep, "PYTHONUNBUFFERED": "1", "HOME": str(root.parent / "home"),
               "WANDB_BASE_URL": wandb_url, "WANDB_API_KEY": KEY,          # the sync agent's and results' side only:
               "GITHUB_API_URL": github_url, "GITHUB_REPOSITORY": repository, "GITHUB_TOKEN": TOKEN}
        (root.parent / "home").mkdir(exist_ok=True)
        return cls(root, env)

    def step(self, session: str, *args: str, timeout: int = 1800) -> str:
        """`nox -s SESSION -- ARGS` in the project; its output. A failure raises with the output's tail."""
        start = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "nox", "-s", session, *(["--", *args] if args else [])], cwd=self.root,
                              env=self.env, capture_output=True, text=True, timeout=timeout)
        self.times.append((f"{session} {' '.join(args)}".strip(), time.monotonic() - start))
        out = done.stdout + done.stderr
        if done.returncode != 0:
            raise AssertionError(f"nox -s {session} -- {' '.join(args)} exited {done.returncode}:\n{out[-6000:]}")
        return out

    def submit(self) -> str:
        """The training job on SLURM, waited for; its id (slurm-<n>)."""
        out = self.step("submit", "--backend", "slurm", "--wait", *TRAIN)
        return re.search(r"submitted (slurm-\d+):", out).group(1)

    def sync(self, timeout: float = 300) -> str:
        """Passes of the sync agent (`--once`) until a pass leaves nothing waiting; their output."""
        deadline, said = time.monotonic() + timeout, ""
        start = time.monotonic()
        while True:
            done = subprocess.run([sys.executable, "-m", "nox", "-s", "sync_agent", "--", "--once", "--grace", "2"],
                                  cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout)
            said += done.stdout + done.stderr
            if done.returncode != 0:
                raise AssertionError(f"the sync agent exited {done.returncode}:\n{said[-6000:]}")
            if "-> synced (" in said or time.monotonic() > deadline:
                break
            time.sleep(1)
        self.times.append(("sync_agent --once", time.monotonic() - start))
        return said
