"""`copier update` and `copier recopy` on a project made from an earlier release of the template.

A temporary copy of the committed template gets real git tags: 1.0.0, then (after a project is
generated from it and edited as a researcher would) a 2.0.0 that changes a spec, renames a config
key in the code and configs, and registers the rename as a migration. The real copier updates the
project; the assertions are on the files and on the report copier's last migration prints.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import copier
import pytest

from validators.artifacts import PROJECT_OWNED
from validators.update import NEXT_STEPS

from ..helpers import finish_setup, git, release

pytestmark = pytest.mark.e2e

PACKAGE = "demo_project"
OLD_KEY, NEW_KEY = "progress_refresh_rate", "progress_bar_refresh_rate"
SPEC_ADDITION = ("8. The template release the project was last updated to (`_commit` in "
                 "`.copier-answers.yml`) and whether `nox -s update_check` is clean.\n")
RENAME_ENTRY = f"""renames:
  - version: "2.0.0"
    files: configs/trainer/*.yaml
    old: {OLD_KEY}
    new: {NEW_KEY}
    why: the Lightning 1.x name researchers search for
"""
# The researcher's own trainer profile, written from cpu.yaml before the release renamed the key.
CLUSTER_YAML = f"""# Our lab node: 4 CPU processes.
accelerator: cpu                 # lightning accelerator
devices: 4                       # processes on the node
strategy: ddp                    # one process per device
{OLD_KEY}: 50        # fewer progress-bar writes in batch logs
"""
# The researcher's line in train.py: in build(), a part of the file the releases here leave alone.
SETUP_LINE = '    datamodule.setup("fit")\n'
USER_LINE = "    # our lab: setup() also checks that every scan names its scanner\n"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{path}: expected exactly one {old!r}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def owned_snapshot(root: Path) -> dict[str, bytes]:
    """Bytes of every project-owned file (validators.update.PROJECT_OWNED), data/mini included."""
    out = {}
    for name in PROJECT_OWNED:
        path = root / name
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file():
                out[file.relative_to(root).as_posix()] = file.read_bytes()
    return out


@pytest.fixture(scope="module")
def template_repo(tmp_path_factory) -> Path:
    """This repository's committed tree (template/validators stays a link) in a fresh repo tagged 1.0.0."""
    repo = release(tmp_path_factory.mktemp("template") / "hephaestus", "HEAD", "1.0.0", "release 1.0.0")
    assert (repo / "template/validators").is_symlink()
    return repo


@pytest.fixture(scope="module")
def project_v1(template_repo, tmp_path_factory) -> Path:
    """A project generated from 1.0.0, committed, then edited and committed again as a researcher would."""
    root = tmp_path_factory.mktemp("v1") / PACKAGE
    copier.run_copy(str(template_repo), root, data={"project_name": PACKAGE}, defaults=True, unsafe=True,
                    vcs_ref="1.0.0", quiet=True)
    finish_setup(root)  # what `nox -s setup` adds: tech.md measured, the A3-A4 reports
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "generated from hephaestus 1.0.0")
    with (root / "docs/plan/requirements.md").open("a", encoding="utf-8") as f:
        f.write("\nNote from the PI: the scans come from two scanners; check both.\n")
    edit(root / "configs/train.yaml", "lr: 0.001 ", "lr: 0.003 ")
    edit(root / f"src/{PACKAGE}/train.py", SETUP_LINE, SETUP_LINE + USER_LINE)
    (root / "configs/trainer/cluster.yaml").write_text(CLUSTER_YAML, encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "our changes")
    return root


@pytest.fixture(scope="module")
def release_v2(template_repo, project_v1) -> str:
    """Release 2.0.0: a spec change, the key rename in code and configs, and its migration entry."""
    repo = template_repo
    with (repo / "template/docs/specs/DEBUG_CODE.md.jinja").open("a", encoding="utf-8") as f:
        f.write(SPEC_ADDITION)
    edit(repo / "template/configs/trainer/cpu.yaml", f"{OLD_KEY}: 10        #", f"{NEW_KEY}: 10    #")
    edit(repo / "template/src/{{ package_name }}/config.py.jinja", f"{OLD_KEY}: int = 10", f"{NEW_KEY}: int = 10")
    edit(repo / "template/src/{{ package_name }}/train.py.jinja", f"cfg.trainer.{OLD_KEY}", f"cfg.trainer.{NEW_KEY}")
    edit(repo / "hooks/config_renames.yml", "renames: []\n", RENAME_ENTRY)
    git(repo, "commit", "-qam", "release 2.0.0: rename trainer.progress_refresh_rate")
    git(repo, "tag", "2.0.0")
    return "2.0.0"


def fresh_copy(project: Path, tmp_path: Path) -> Path:
    root = tmp_path / PACKAGE
    shutil.copytree(project, root, symlinks=True)
    return root


def update(root: Path, **options) -> float:
    start = time.perf_counter()
    copier.run_update(root, defaults=True, unsafe=True, overwrite=True, skip_answered=True, quiet=True, **options)
    return time.perf_counter() - start


def test_update_brings_the_release_and_keeps_the_researchers_work(project_v1, release_v2, tmp_path, capfd):
    root = fresh_copy(project_v1, tmp_path)
    owned = owned_snapshot(root)
    capfd.readouterr()
    seconds = update(root)  # no vcs_ref: the latest release tag, as `copier update` does
    out = capfd.readouterr().out
    print(f"copier update 1.0.0 -> 2.0.0 with its migrations and the A gates: {seconds:.1f} s")

    assert "_commit: 2.0.0\n" in (root / ".copier-answers.yml").read_text()
    assert (root / "docs/specs/DEBUG_CODE.md").read_text().endswith(SPEC_ADDITION)
    assert f"{NEW_KEY}: 10    # progress bar" in (root / "configs/trainer/cpu.yaml").read_text()
    assert f"{NEW_KEY}: int = 10" in (root / f"src/{PACKAGE}/config.py").read_text()
    train_py = (root / f"src/{PACKAGE}/train.py").read_text()
    assert SETUP_LINE + USER_LINE in train_py and f"refresh_rate=cfg.trainer.{NEW_KEY}" in train_py  # both sides merged
    assert "lr: 0.003 " in (root / "configs/train.yaml").read_text()
    # The migration renamed the key in the researcher's own profile, keeping value and comments.
    assert (root / "configs/trainer/cluster.yaml").read_text() == CLUSTER_YAML.replace(
        f"{OLD_KEY}: 50        #", f"{NEW_KEY}: 50    #")
    assert ("migrations: renamed configs/trainer/cluster.yaml: progress_refresh_rate -> progress_bar_refresh_rate "
            "(2.0.0: the Lightning 1.x name researchers search for)\n") in out
    assert owned_snapshot(root) == owned
    assert not list(root.rglob("*.rej"))
    assert "after-update: project-owned files unchanged (documents, reports, data/mini)\n" in out
    assert "after-update: no conflicts (no conflict markers, no .rej files)\n" in out
    assert "after-update: stages A: all gates pass\n" in out
    # The renamed key loads under 2.0.0's closed schema.
    shown = subprocess.run([sys.executable, "scripts/train.py", "trainer=cluster", "--print-config"], cwd=root,
                           capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert f"{NEW_KEY}: 50" in shown.stdout and "devices: 4" in shown.stdout


@pytest.mark.parametrize("conflict", ["inline", "rej"])
def test_a_conflict_is_reported_with_next_steps_and_nothing_is_lost(project_v1, release_v2, tmp_path, capfd, conflict):
    """The researcher changed the very line 2.0.0 renames: both versions survive and the report says what to do."""
    root = fresh_copy(project_v1, tmp_path)
    cpu = root / "configs/trainer/cpu.yaml"
    edit(cpu, f"{OLD_KEY}: 10 ", f"{OLD_KEY}: 25 ")
    git(root, "commit", "-qam", "slower progress bar")
    owned = owned_snapshot(root)
    capfd.readouterr()
    update(root, conflict=conflict)
    out = capfd.readouterr().out

    comment = "# progress bar updates every n steps (lower = more overhead)\n"
    if conflict == "inline":
        assert (f"<<<<<<< before updating\n{NEW_KEY}: 25    {comment}=======\n{NEW_KEY}: 10    {comment}"
                ">>>>>>> after updating\n") in cpu.read_text()  # the migration renamed the researcher's side too
        listed = ("  configs/trainer/cpu.yaml: line 15: '<<<<<<< before updating' is invalid: expected no conflict "
                  "markers left by `copier update` (hint: keep your lines (under 'before updating') or the template's "
                  "(under 'after updating') or a mix, delete the marker lines, then `git add` the file)\n")
    else:
        assert f"{NEW_KEY}: 10    {comment}" in cpu.read_text()
        rejected = (root / "configs/trainer/cpu.yaml.rej").read_text()
        assert f"-{OLD_KEY}: 10        {comment}+{OLD_KEY}: 25        {comment}" in rejected  # the researcher's hunk
        listed = ("  configs/trainer/cpu.yaml.rej: <root>: 'hunks rejected for configs/trainer/cpu.yaml' is invalid: "
                  "expected no .rej files left by `copier update` (hint: apply these hunks to configs/trainer/cpu.yaml "
                  "by hand, then delete configs/trainer/cpu.yaml.rej)\n")
    assert f"after-update: the update left 1 conflict(s) to resolve:\n{listed}{NEXT_STEPS}\n" in out
    assert "after-update: gates not run (stages A): resolve the conflicts first\n" in out
    assert owned_snapshot(root) == owned
    assert "lr: 0.003 " in (root / "configs/train.yaml").read_text()


def test_recopy_keeps_documents_reports_and_mini_data(project_v1, tmp_path, capfd):
    root = fresh_copy(project_v1, tmp_path)
    owned = owned_snapshot(root)
    mtimes = {p: p.stat().st_mtime_ns for p in (root / "data/mini").rglob("*")}
    capfd.readouterr()
    start = time.perf_counter()
    copier.run_recopy(root, defaults=True, unsafe=True, overwrite=True, skip_answered=True, quiet=True, vcs_ref="1.0.0")
    print(f"copier recopy: {time.perf_counter() - start:.1f} s")
    out = capfd.readouterr().out

    assert owned_snapshot(root) == owned
    assert {p: p.stat().st_mtime_ns for p in (root / "data/mini").rglob("*")} == mtimes  # not even rewritten
    assert "kept the existing data/mini/ (project-owned; --force rewrites it)\n" in out
    assert ("planner: docs/plan/requirements.md, docs/plan/tech.md, docs/plan/task.md exist; kept them "
            "(--force rewrites)\n") in out
    # recopy renders the template afresh: edits to template-owned files go, the researcher's own files stay
    assert USER_LINE not in (root / f"src/{PACKAGE}/train.py").read_text()
    assert (root / "configs/trainer/cluster.yaml").read_text() == CLUSTER_YAML
