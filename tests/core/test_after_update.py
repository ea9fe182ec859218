"""The after-update report (validators/update.py) and `--if-missing`, which keeps project-owned reports (nox -s setup)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from validators.__main__ import main as validators_main
from validators.__main__ import table
from validators.project import Project
from validators.update import NEXT_STEPS, after_update, owned_changes, rule_no_conflicts

from ..helpers import write_file

CONFLICT = "a = 1\n<<<<<<< before updating\nb = 2\n=======\nb = 3\n>>>>>>> after updating\n"
MARKER_HINT = ("keep your lines (under 'before updating') or the template's (under 'after updating') or a mix, "
               "delete the marker lines, then `git add` the file")


def project(tmp_path: Path, files: dict[str, str | bytes]) -> Project:
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return Project(tmp_path)


def test_markers_and_rej_files_are_found_with_file_and_line(tmp_path):
    found = [str(e) for e in rule_no_conflicts(project(tmp_path, {
        "src/pkg/data/image.py": CONFLICT,             # a package folder named data/ is searched
        "configs/train.yaml.rej": "diff a/configs/train.yaml b/configs/train.yaml\t(rejected hunks)\n",
        "data/mini/notes.md": CONFLICT,                # project-owned data is never merged: not searched
        ".venvs/debug-cpu/lib/x.py": CONFLICT,
        "README.md": "<<<<<<< a start without an end is prose\n",
        "logo.png": b"\x89PNG\0<<<<<<< \n>>>>>>> \n",
    }))]
    assert found == [
        "configs/train.yaml.rej: <root>: 'hunks rejected for configs/train.yaml' is invalid: expected no .rej files "
        "left by `copier update` (hint: apply these hunks to configs/train.yaml by hand, then delete configs/train.yaml.rej)",
        f"src/pkg/data/image.py: line 2: '<<<<<<< before updating' is invalid: expected no conflict markers left by "
        f"`copier update` (hint: {MARKER_HINT})",
    ]


def test_with_conflicts_the_report_gives_next_steps_and_skips_the_gates(tmp_path, capsys):
    assert after_update(project(tmp_path, {"configs/train.yaml": CONFLICT}), ["A"], table()) == 1
    assert capsys.readouterr().out == (
        "after-update: the update left 1 conflict(s) to resolve:\n"
        f"  configs/train.yaml: line 2: '<<<<<<< before updating' is invalid: expected no conflict markers left by "
        f"`copier update` (hint: {MARKER_HINT})\n"
        f"{NEXT_STEPS}\n"
        "after-update: gates not run (stages A): resolve the conflicts first\n")


def test_a_changed_project_owned_file_is_reported(tmp_path):
    project(tmp_path, {"docs/plan/requirements.md": "v1\n", "data/mini/train.csv": "x\n", "src/a.py": "a = 1\n"})
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "v1"]):
        subprocess.run(["git", *args], cwd=tmp_path, check=True)
    assert owned_changes(Project(tmp_path)) == []
    write_file(tmp_path / "docs/plan/requirements.md", "rewritten\n")
    (tmp_path / "data/mini/extra.csv").write_text("y\n")
    (tmp_path / "src/a.py").write_text("a = 2\n")  # template-owned: not this check's business
    assert owned_changes(Project(tmp_path)) == [" M docs/plan/requirements.md", "?? data/mini/extra.csv"]
    assert owned_changes(Project(Path("/"))) is None  # not a git repository: nothing to compare with


def test_a_release_move_is_not_a_change_but_a_moved_and_edited_file_is(tmp_path):
    """hooks/file_moves.py `git mv`s requirements.md into docs/plan/: a pure rename (R100) is the migration's."""
    project(tmp_path, {"requirements.md": "v1\n" * 20, "tech.md": "t\n" * 20, "reports/REVIEW_REPORT.md": "r\n" * 20})
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "v1"]):
        subprocess.run(["git", *args], cwd=tmp_path, check=True)
    (tmp_path / "docs/plan").mkdir(parents=True)
    for old, new in (("requirements.md", "docs/plan/requirements.md"), ("tech.md", "docs/plan/tech.md"),
                     ("reports/REVIEW_REPORT.md", "reports/review.md")):
        subprocess.run(["git", "mv", old, new], cwd=tmp_path, check=True)
    assert owned_changes(Project(tmp_path)) == ["R  reports/REVIEW_REPORT.md -> reports/review.md"]  # owned -> owned
    with (tmp_path / "docs/plan/tech.md").open("a") as f:
        f.write("edited\n")
    assert owned_changes(Project(tmp_path)) == ["RM tech.md -> docs/plan/tech.md",
                                                "R  reports/REVIEW_REPORT.md -> reports/review.md"]
    subprocess.run(["git", "add", "docs/plan/tech.md"], cwd=tmp_path, check=True)  # staged: a rename with an edit
    assert owned_changes(Project(tmp_path)) == ["R  tech.md -> docs/plan/tech.md",
                                                "R  reports/REVIEW_REPORT.md -> reports/review.md"]


def test_the_copy_tasks_keep_existing_reports(tmp_path, capsys):
    (tmp_path / "reports").mkdir()
    write_file(tmp_path / "reports/PROJECT_BUILD_LOG.md", "the researcher's log\n")
    write_file(tmp_path / "reports/REVIEW_REPORT.md", "the researcher's review\n")
    for command, kept in (("build-log", "reports/PROJECT_BUILD_LOG.md (project-owned; `nox -s review` rewrites it)"),
                          ("review", "reports/REVIEW_REPORT.md (project-owned; `nox -s review` rewrites it)"),
                          ("reports", "reports/PROJECT_BUILD_LOG.md and reports/REVIEW_REPORT.md (project-owned; `nox -s review` rewrites them)")):
        assert validators_main(["--project", str(tmp_path), command, "--if-missing"]) == 0
        assert capsys.readouterr().out == f"kept the existing {kept}\n"
    assert (tmp_path / "reports/PROJECT_BUILD_LOG.md").read_text() == "the researcher's log\n"
    assert (tmp_path / "reports/REVIEW_REPORT.md").read_text() == "the researcher's review\n"
