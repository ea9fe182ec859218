"""The config-key migrations `copier update` runs (hooks/migrations.py) and the keep-what-exists hooks."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path, PurePosixPath

import pytest
from packaging.version import Version

from hooks import file_moves, migrations, mini_data
from hooks.file_moves import Move
from hooks.migrations import RegistryError, Rename, load_registry, rename_key, select
from validators import errors
from validators.artifacts import ARTIFACTS

ROOT = Path(__file__).resolve().parents[2]
RATE = Rename(Version("2.0.0"), "configs/trainer/*.yaml", "progress_refresh_rate", "progress_bar_refresh_rate",
              "Lightning's name")
SCHEDULER = Rename(Version("1.1.0"), "configs/train.yaml", "optim.scheduler", "optim.lr_scheduler", "clearer")
CPU = "devices: 1                       # processes\nprogress_refresh_rate: 10        # bar updates every n steps\n"


def test_the_shipped_registry_is_valid_and_not_ahead_of_the_release():
    """Release step 3 (README: Releases): a rename's version is at most the version in pyproject.toml."""
    release = Version(re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)[1])
    ahead = [f"{r.old} -> {r.new} ({r.version})" for r in load_registry() if r.version > release]
    assert ahead == [], f"set pyproject.toml's version to the release these renames ship in: {ahead}"


def test_a_top_level_key_is_renamed_with_value_and_comment_column_kept():
    text, count, problem = rename_key(CPU, RATE)
    assert (text, count, problem) == (
        "devices: 1                       # processes\nprogress_bar_refresh_rate: 10    # bar updates every n steps\n", 1, None)
    assert rename_key(text, RATE) == (text, 0, None)  # idempotent: the old key is gone


def test_a_nested_key_is_renamed_only_under_its_parent():
    text = "optim:\n  lr: 0.001\n  scheduler: cosine   # per step\nscheduler: top-level\nother:\n  scheduler: x\n"
    assert rename_key(text, SCHEDULER) == (
        "optim:\n  lr: 0.001\n  lr_scheduler: cosine # per step\nscheduler: top-level\nother:\n  scheduler: x\n", 1, None)


def test_both_names_present_is_left_for_the_researcher():
    text = "progress_refresh_rate: 10\nprogress_bar_refresh_rate: 20\n"
    assert rename_key(text, RATE) == (text, 0, "both 'progress_refresh_rate' and 'progress_bar_refresh_rate' are "
                                      "present: keep one (the value you want) under 'progress_bar_refresh_rate'")


def test_inside_a_conflict_the_researchers_side_is_renamed_too():
    text = ("devices: 1\n<<<<<<< before updating\nprogress_refresh_rate: 25        # bar\n=======\n"
            "progress_bar_refresh_rate: 10    # bar\n>>>>>>> after updating\n")
    assert rename_key(text, RATE) == (text.replace("progress_refresh_rate: 25        #", "progress_bar_refresh_rate: 25    #"),
                                      1, None)


def test_a_nested_key_inside_a_conflict_keeps_its_parent_on_both_sides():
    text = ("optim:\n  lr: 0.001\n<<<<<<< before updating\n  scheduler: none\n=======\n  lr_scheduler: cosine\n"
            ">>>>>>> after updating\n  weight_decay: 0.0\n")
    new, count, problem = rename_key(text, SCHEDULER)
    assert (count, problem) == (1, None) and "  lr_scheduler: none\n=======\n  lr_scheduler: cosine\n" in new


def test_select_takes_the_releases_after_the_projects_up_to_the_target():
    renames = [RATE, SCHEDULER]
    assert select(renames, Version("1.0.0"), Version("2.0.0")) == [SCHEDULER, RATE]
    assert select(renames, Version("1.1.0"), Version("1.9.0")) == []
    assert select(renames, Version("1.1.0"), Version("2.0.0")) == [RATE]


@pytest.mark.parametrize(("entry", "message"), [
    ("- {version: '2.0.0', files: a.yaml, old: a, new: b}",
     "config_renames.yml: renames[0]: keys ['files', 'new', 'old', 'version']: expected exactly "
     "['files', 'new', 'old', 'version', 'why']"),
    ("- {version: 'two', files: a.yaml, old: a, new: b, why: w}",
     "config_renames.yml: renames[0].version: 'two' is not a PEP 440 version such as '1.1.0'"),
    ("- {version: '2.0.0', files: ../x.yaml, old: a, new: b, why: w}",
     "config_renames.yml: renames[0].files: '../x.yaml' must be a glob inside the project, e.g. 'configs/trainer/*.yaml'"),
    ("- {version: '2.0.0', files: a.yaml, old: optim.a, new: b, why: w}",
     "config_renames.yml: renames[0]: 'optim.a' -> 'b': only the last part of the dotted key may change"),
])
def test_a_malformed_registry_names_the_entry_and_field(tmp_path, entry, message):
    registry = tmp_path / "config_renames.yml"
    registry.write_text(f"renames:\n  {entry}\n")
    with pytest.raises(RegistryError) as err:
        load_registry(registry)
    assert str(err.value) == message


def test_the_command_renames_in_the_project_and_reports(tmp_path, capsys):
    registry = tmp_path / "config_renames.yml"
    registry.write_text("renames:\n  - {version: '2.0.0', files: 'configs/trainer/*.yaml', old: progress_refresh_rate,"
                        " new: progress_bar_refresh_rate, why: Lightning's name}\n")
    project = tmp_path / "project"
    (project / "configs/trainer").mkdir(parents=True)
    (project / "configs/trainer/cluster.yaml").write_text(CPU)
    (project / "configs/trainer/both.yaml").write_text("progress_refresh_rate: 1\nprogress_bar_refresh_rate: 2\n")
    argv = ["--from", "1.0.0", "--to", "2.0.0", "--project", str(project), "--registry", str(registry)]
    assert migrations.main(argv) == 0
    assert capsys.readouterr().out == (
        "migrations: renamed configs/trainer/cluster.yaml: progress_refresh_rate -> progress_bar_refresh_rate "
        "(2.0.0: Lightning's name)\n"
        "migrations: by hand: configs/trainer/both.yaml: both 'progress_refresh_rate' and 'progress_bar_refresh_rate' "
        "are present: keep one (the value you want) under 'progress_bar_refresh_rate'\n"
        "migrations: 1.0.0 -> 2.0.0: 1 rename(s) due, 1 file change(s), 1 left for you\n")
    assert "progress_bar_refresh_rate: 10" in (project / "configs/trainer/cluster.yaml").read_text()
    assert migrations.main(argv) == 0  # a second run finds nothing to do
    assert "0 file change(s), 1 left for you" in capsys.readouterr().out
    assert migrations.main([*argv[:3], "latest"]) == 1
    assert capsys.readouterr().err == "migrations: error: Invalid version: 'latest'\n"


MOVES_1_0 = [  # hooks/file_moves.yml for 0.1.0 -> 1.0.0: (old, where a file of it goes)
    ("requirements.md", "docs/plan/requirements.md"), ("tech.md", "docs/plan/tech.md"), ("task.md", "docs/plan/task.md"),
    *((name, f"reports/{name}") for name in (
        "PROJECT_BUILD_LOG.md", "REVIEW_REPORT.md", "env_check_report.md", "mini_dataset.md", "bugfix_report.md",
        "full_train_guidance.md", "docker_env_report.md", "container_env_check.log", "deploy_report.md",
        "docker_running_report.md", "docker_error_report_*.md")),
    ("deploy_latency.png", "reports/figures/deploy_latency.png"),
    ("logs/explore_mini.executed.ipynb", "reports/explore_mini.executed.ipynb"), ("logs/figures/*.png", "reports/figures/*.png"),
    ("specs/*.md", "docs/specs/*.md"), ("venv.md", "docs/venv.md"),
]


def test_the_shipped_moves_are_the_1_0_layout_and_land_on_registered_artifacts():
    moves, notes = file_moves.load_registry()
    release = Version(re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)[1])
    assert max(m.version for m in [*moves, *notes]) <= release
    due = file_moves.select(moves, Version("0.1.0"), Version("1.0.0"))
    assert [(m.old, m.target(m.old)) for m in due] == MOVES_1_0
    assert file_moves.select(moves, Version("1.0.0"), Version("1.1.0")) == []
    # each target is a path of validators/artifacts.py ({n} as a glob) or a file in one of its folders
    registered = {re.sub(r"\{\w+\}", "*", a.path) for a in ARTIFACTS}
    assert [t for _, t in MOVES_1_0 if t not in registered and str(PurePosixPath(t).parent) not in registered] == []
    assert [n.note for n in notes] == [
        "checkpoints/ and logs/ are kept as they are (not moved); new runs go to runs/<UTC timestamp>-<name>/"]


@pytest.mark.parametrize(("entry", "message"), [
    ("moves: [{version: '1.0.0', old: a.md, new: b.md}]",
     "file_moves.yml: moves[0]: keys ['new', 'old', 'version']: expected exactly ['new', 'old', 'version', 'why']"),
    ("moves: [{version: one, old: a.md, new: b.md, why: w}]",
     "file_moves.yml: moves[0].version: 'one' is not a PEP 440 version such as '1.0.0'"),
    ("moves: [{version: '1.0.0', old: ../a.md, new: b.md, why: w}]",
     "file_moves.yml: moves[0].old: '../a.md' must be a path inside the project, e.g. 'requirements.md'"),
    ("moves: [{version: '1.0.0', old: a.md, new: /b.md, why: w}]",
     "file_moves.yml: moves[0].new: '/b.md' must be a path inside the project, e.g. 'docs/plan/requirements.md'"),
    ("moves: [{version: '1.0.0', old: '*/a.md', new: docs/, why: w}]",
     "file_moves.yml: moves[0]: '*/a.md' -> 'docs/': a glob may only be in the last part of 'old'"),
    ("moves: [{version: '1.0.0', old: '*.md', new: docs/all.md, why: w}]",
     "file_moves.yml: moves[0].new: 'docs/all.md': the files of the glob '*.md' move into a folder: end it with '/'"),
    ("moves: [{version: '1.0.0', old: docs/a.md, new: docs/, why: w}]",
     "file_moves.yml: moves[0]: 'docs/a.md' -> 'docs/': 'old' must name a file and 'new' another path"),
    ("notes: [{version: '1.0.0', text: x}]",
     "file_moves.yml: notes[0]: keys ['text', 'version']: expected exactly ['note', 'version']"),
    ("renames: []", "file_moves.yml: top-level keys ['renames']: expected 'moves' and 'notes'"),
])
def test_a_malformed_move_registry_names_the_entry_and_field(tmp_path, entry, message):
    registry = tmp_path / "file_moves.yml"
    registry.write_text(entry + "\n")
    with pytest.raises(errors.RegistryError) as err:
        file_moves.load_registry(registry)
    assert str(err.value) == message
    assert RegistryError is errors.RegistryError  # one class for every registry


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout


def test_the_command_moves_files_before_renaming_keys_and_reports(tmp_path, capsys):
    moves = tmp_path / "file_moves.yml"
    moves.write_text("moves:\n"
                     "  - {version: '1.0.0', old: requirements.md, new: docs/plan/requirements.md, why: plan docs}\n"
                     "  - {version: '1.0.0', old: 'docker_error_report_*.md', new: reports/, why: reports}\n"
                     "  - {version: '1.0.0', old: venv.md, new: docs/venv.md, why: template-owned}\n"
                     "  - {version: '1.0.0', old: mini_dataset.md, new: reports/mini_dataset.md, why: reports}\n"
                     "  - {version: '1.0.0', old: notes, new: reports/notes, why: not a file}\n"
                     "  - {version: '0.2.0', old: bugfix_report.md, new: reports/bugfix_report.md, why: older}\n"
                     "notes:\n  - {version: '1.0.0', note: runs go to runs/}\n")
    renames = tmp_path / "config_renames.yml"
    renames.write_text("renames:\n  - {version: '1.0.0', files: 'docs/plan/*.md', old: sla, new: service_level, why: w}\n")
    project = tmp_path / "project"
    files = {"requirements.md": "sla: 1\nnote: edited by the researcher\n", "docker_error_report_1.md": "one\n",
             "docker_error_report_12.md": "twelve\n", "venv.md": "old spec\n", "docs/venv.md": "copier's spec\n",
             "bugfix_report.md": "already 0.2.0\n"}
    for name, text in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    git(project, "init", "-q")
    git(project, "add", "requirements.md", "docker_error_report_1.md")
    git(project, "commit", "-qm", "v0.1")
    (project / "notes").mkdir()
    argv = ["--from", "0.2.0", "--to", "1.0.0", "--project", str(project), "--registry", str(renames), "--moves", str(moves)]
    assert migrations.main(argv) == 0
    assert capsys.readouterr().out == (
        "migrations: moved requirements.md -> docs/plan/requirements.md (1.0.0: plan docs)\n"
        "migrations: moved docker_error_report_1.md -> reports/docker_error_report_1.md (1.0.0: reports)\n"
        "migrations: moved docker_error_report_12.md -> reports/docker_error_report_12.md (1.0.0: reports)\n"
        "migrations: by hand: venv.md: not moved to docs/venv.md: docs/venv.md exists: keep one of the two and "
        "delete the other (docs/venv.md is where this release looks)\n"
        "migrations: by hand: notes: a folder, not moved: move what it holds to reports/notes yourself\n"
        "migrations: 0.2.0 -> 1.0.0: 5 move(s) due, 3 file(s) moved, 2 left for you\n"
        "migrations: 1.0.0: runs go to runs/\n"
        "migrations: renamed docs/plan/requirements.md: sla -> service_level (1.0.0: w)\n"
        "migrations: 0.2.0 -> 1.0.0: 1 rename(s) due, 1 file change(s), 0 left for you\n")
    # tracked files moved with `git mv` (staged renames), the untracked one renamed; nothing overwritten
    assert git(project, "status", "--porcelain", "--untracked-files=all").splitlines() == [
        "RM requirements.md -> docs/plan/requirements.md",  # M: the key rename after the move
        "R  docker_error_report_1.md -> reports/docker_error_report_1.md",
        "?? bugfix_report.md", "?? docs/venv.md", "?? reports/docker_error_report_12.md", "?? venv.md"]
    assert (project / "docs/plan/requirements.md").read_text() == "service_level: 1\nnote: edited by the researcher\n"
    assert (project / "reports/docker_error_report_12.md").read_text() == "twelve\n"
    assert ((project / "venv.md").read_text(), (project / "docs/venv.md").read_text()) == ("old spec\n", "copier's spec\n")
    assert not (project / "requirements.md").exists() and (project / "bugfix_report.md").exists()
    assert migrations.main(argv) == 0  # idempotent: nothing left to move or rename
    assert capsys.readouterr().out == (
        "migrations: by hand: venv.md: not moved to docs/venv.md: docs/venv.md exists: keep one of the two and "
        "delete the other (docs/venv.md is where this release looks)\n"
        "migrations: by hand: notes: a folder, not moved: move what it holds to reports/notes yourself\n"
        "migrations: 0.2.0 -> 1.0.0: 5 move(s) due, 0 file(s) moved, 2 left for you\n"
        "migrations: 1.0.0: runs go to runs/\n"
        "migrations: 0.2.0 -> 1.0.0: 1 rename(s) due, 0 file change(s), 0 left for you\n")
    moves.write_text("moves: [{version: '1.0.0', old: a.md, new: b.md}]\n")
    assert migrations.main(argv) == 1
    assert capsys.readouterr().err == ("migrations: error: file_moves.yml: moves[0]: keys ['new', 'old', 'version']: "
                                       "expected exactly ['new', 'old', 'version', 'why']\n")


def test_moves_outside_the_versions_and_to_a_missing_folder(tmp_path):
    move = Move(Version("1.0.0"), "deploy_latency.png", "reports/figures/deploy_latency.png", "figures")
    (tmp_path / "deploy_latency.png").write_bytes(b"\x89PNG\0")
    assert file_moves.select([move], Version("1.0.0"), Version("2.0.0")) == []
    assert file_moves.apply(tmp_path, [move]) == (  # not a git repository: a plain rename, folders created
        ["deploy_latency.png -> reports/figures/deploy_latency.png (1.0.0: figures)"], [])
    assert (tmp_path / "reports/figures/deploy_latency.png").read_bytes() == b"\x89PNG\0"
    assert file_moves.apply(tmp_path, [move]) == ([], [])  # the old path is gone: skipped silently


def test_mini_data_keeps_an_existing_folder_unless_forced(tmp_path, capsys):
    out = tmp_path / "mini"
    out.mkdir()
    (out / "train.csv").write_text("edited by the researcher\n")
    assert mini_data.main(["--family", "tabular_regression", "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"kept the existing {out}/ (project-owned; --force rewrites it)\n"
    assert (out / "train.csv").read_text() == "edited by the researcher\n"
    assert mini_data.main(["--family", "tabular_regression", "--out", str(out), "--force"]) == 0
    assert (out / "train.csv").read_text().startswith("age,")

