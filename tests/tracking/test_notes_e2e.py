"""Stage D7 in a generated project, end to end: two real 1-epoch trainings (W&B offline, the template's
default logger), then `python -m validators note` on each, gate D7, and git: the notes are committed
with the project (not ignored), and the second note links the first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from validators.frontmatter import split

from ..helpers import git, render

pytestmark = pytest.mark.e2e


def run(root: Path, *args: str, timeout: int = 600) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "WANDB_MODE", "WANDB_API_KEY")}
    done = subprocess.run([sys.executable, *args], cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{(done.stdout + done.stderr)[-5000:]}"
    return done.stdout


def test_notes_of_two_real_runs(tmp_path: Path) -> None:
    root = render(tmp_path / "demo_project", setup=False)
    git(root, "init", "-q")
    run(root, "scripts/train.py", "trainer.max_epochs=1", "run.name=first")
    first = os.readlink(root / "runs" / "latest")
    assert run(root, "-m", "validators", "note").endswith("notes/index.md: updated\n")
    run(root, "scripts/train.py", "trainer.max_epochs=1", "optim.lr=0.01", "run.name=second")
    run(root, "-m", "validators", "note")
    notes = sorted(p for p in (root / "notes").glob("*.md") if p.name != "index.md")
    assert [p.name.split("-", 1)[1] for p in notes] == ["first.md", "second.md"]
    metas = [split(p.read_text(encoding="utf-8"))[0] for p in notes]
    summary = json.loads((root / "runs" / first / "summary.json").read_text(encoding="utf-8"))
    assert metas[0]["run"] == f"runs/{first}" and metas[0]["metrics"] == summary["metrics"]
    assert (metas[0]["config"]["optim"]["lr"], metas[1]["config"]["optim"]["lr"]) == (0.001, 0.01)
    assert metas[1]["links"] == [metas[0]["id"]] and metas[0]["links"] == []
    assert f"[{metas[0]['id']}]: {notes[0].name} " in notes[1].read_text(encoding="utf-8")
    assert run(root, "-m", "validators", "check", "--stages", "D7") == "stages D7: all gates pass\n"
    git(root, "add", "-A")
    tracked = git(root, "ls-files", "notes").split()
    assert tracked == [*(f"notes/{p.name}" for p in notes), "notes/index.md"]
