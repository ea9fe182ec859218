"""The validators' command line: a user mistake is one `error:` line and exit 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from validators.__main__ import main

from ..helpers import TEMPLATE


@pytest.mark.parametrize(("argv", "message"), [
    (["check", "--stages", "Z"], "error: unknown stage 'Z': expected one of A1, A2, A3, A4, A5, B1, B2, B3, B4, C4, "
                                 "D1, D2, D4, D7 or a group (A, B, C, D)"),
    (["bugfix", "--attempts", "many"], "error: argument --attempts: invalid int value: 'many' "
                                       "(see `python -m validators bugfix --help`)"),
    (["deploy", "--variant", "tpu"], "error: argument --variant: invalid choice: 'tpu' (choose from 'cpu', 'gpu') "
                                     "(see `python -m validators deploy --help`)"),
    (["frobnicate"], "error: argument command: invalid choice: 'frobnicate' (choose from "),
])
def test_bad_arguments_are_one_error_line_and_exit_2(tmp_path, argv, message):
    (tmp_path / ".copier-answers.yml").write_text("project_name: demo\n")
    done = subprocess.run([sys.executable, "-m", "validators", "--project", str(tmp_path), *argv],
                          cwd=TEMPLATE, capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(message) and "Traceback" not in done.stderr


def test_a_stage_that_cannot_go_on_is_an_error_line_and_exit_1(tmp_path, capsys):
    assert main(["--project", str(tmp_path), "guidance"]) == 1  # no tech.md: nothing to plan the training from
    assert capsys.readouterr().err == (
        "error: docs/plan/tech.md: <root>: missing: expected the file to exist (hint: run stage A2 "
        "(docs/stages.md in the template lists what writes docs/plan/tech.md))\n")
