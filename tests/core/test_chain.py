"""validators/chain.py: when a chain's step counts as done, and what its fingerprint covers."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from validators import chain
from validators.chain import PROJECT, State, Step, fingerprint

from ..helpers import TEMPLATE, write_file

STEPS = {s.session: s for s in PROJECT}


def project(root: Path) -> Path:
    for rel in ("requirements-cpu.txt", "requirements-gpu.txt", "pyproject.toml", "CLAUDE.md", "src/pkg/model.py",
                "configs/train.yaml", "data/mini/train.csv"):
        write_file(root / rel, f"{rel}\n")
    write_file(root / ".venvs/debug-cpu/pyvenv.cfg", "home = /usr\n")
    return root


def test_a_step_is_done_only_with_its_record_its_outputs_and_the_same_inputs(tmp_path):
    root, state, rules = project(tmp_path), State(tmp_path, "project"), STEPS["rules"]
    assert state.why_not_done(rules, "debug-cpu") == "not run yet"
    state.record(rules, "debug-cpu")
    assert state.why_not_done(rules, "debug-cpu") == "CLAUDE.*.md missing"
    write_file(root / "CLAUDE.inherited.md", "decided\n")
    assert state.why_not_done(rules, "debug-cpu") == ""
    assert state.why_not_done(rules, "debug-gpu") == "last run for debug-cpu, now debug-gpu"
    write_file(root / "CLAUDE.md", "a new rule\n")
    assert state.why_not_done(rules, "debug-cpu") == "its inputs changed"
    state.forget(rules)
    assert state.why_not_done(rules, "debug-cpu") == "not run yet"
    assert json.loads((root / ".hephaestus/chains.json").read_text()) == {"project": {}}


def test_outputs_name_the_venv_of_the_run(tmp_path):
    state = State(project(tmp_path), "project")
    setup = STEPS["setup"]
    state.record(setup, "debug-gpu")
    assert state.why_not_done(setup, "debug-gpu") == (".venvs/debug-gpu/pyvenv.cfg, reports/PROJECT_BUILD_LOG.md, "
                                                      "reports/REVIEW_REPORT.md missing")


def test_a_later_steps_outputs_and_caches_do_not_change_an_earlier_steps_inputs(tmp_path):
    root = project(tmp_path)
    smoke = STEPS["train_smoke"]
    before = fingerprint(root, PROJECT, smoke)
    write_file(root / "configs/experiment/full_ddp.yaml", "written by guidance\n")  # B4's output
    write_file(root / "src/pkg/__pycache__/model.cpython-311.pyc", b"\0")
    write_file(root / "runs/latest/summary.json", "{}")
    assert fingerprint(root, PROJECT, smoke) == before
    write_file(root / "configs/train.yaml", "lr: 0.1\n")
    assert fingerprint(root, PROJECT, smoke) != before


def test_validate_sees_every_edit_a_gate_would(tmp_path):
    root = project(tmp_path)
    validate = STEPS["validate"]
    before = fingerprint(root, PROJECT, validate)
    write_file(root / "configs/experiment/full_ddp.yaml", "edited by hand\n")
    assert fingerprint(root, PROJECT, validate) != before


def test_every_chain_step_is_a_session_of_the_generated_noxfile_and_a_fallback_is_a_step():
    text = re.sub(r"\{\{.*?\}\}", "0", (TEMPLATE / "template/noxfile.py.jinja").read_text(encoding="utf-8"))
    tree = ast.parse(text)
    sessions = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)
                and any("session" in ast.unparse(d) for d in n.decorator_list)}
    for name, steps in chain.CHAINS.items():
        assert name in sessions
        names = [s.session for s in steps]
        assert set(names) <= sessions, set(names) - sessions
        assert all(s.fallback in ("", *names) for s in steps)


def test_a_step_without_inputs_or_outputs_is_done_once_recorded(tmp_path):
    chain.CHAINS["probe"] = (Step("x", "what"),)
    try:
        state = State(tmp_path, "probe")
        state.record(state.steps[0], "debug-cpu")
        assert state.why_not_done(state.steps[0], "debug-cpu") == ""
    finally:
        del chain.CHAINS["probe"]
