"""The config-key migrations `copier update` runs (hooks/migrations.py) and the keep-what-exists hooks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.version import Version

from hooks import migrations, mini_data
from hooks.migrations import RegistryError, Rename, load_registry, rename_key, select

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


def test_mini_data_keeps_an_existing_folder_unless_forced(tmp_path, capsys):
    out = tmp_path / "mini"
    out.mkdir()
    (out / "train.csv").write_text("edited by the researcher\n")
    assert mini_data.main(["--family", "tabular_regression", "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"kept the existing {out}/ (project-owned; --force rewrites it)\n"
    assert (out / "train.csv").read_text() == "edited by the researcher\n"
    assert mini_data.main(["--family", "tabular_regression", "--out", str(out), "--force"]) == 0
    assert (out / "train.csv").read_text().startswith("age,")

