"""requirements.md, tech.md and task.md written by the copier hook: schemas, measured figures, ownership."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hooks import plan_docs
from hooks.planner.llm import plan_with_llm
from validators.errors import DependencyError, HephaestusError
from validators.frontmatter import split
from validators.schema import schema_errors

from ..helpers import CATALOG, TEMPLATE, finish_setup, render

DOCS = {"docs/plan/requirements.md": "requirements", "docs/plan/tech.md": "tech", "docs/plan/task.md": "task"}
COUNT_PARAMS = """
import json, sys
sys.path.insert(0, "src")
from {pkg}.config import load_config
from {pkg}.train import build
out = {{}}
for key, extra in {models!r}.items():
    _, module = build(load_config(["model=" + key, *extra]))
    out[key] = sum(p.numel() for p in module.model.parameters())
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return render(tmp_path_factory.mktemp("docs") / "demo_project", task_family="text_classification")


def front(root: Path, name: str) -> dict:
    return split((root / name).read_text(encoding="utf-8"), file=name)[0]


def test_documents_validate_against_their_schemas(project):
    for name, schema in DOCS.items():
        assert [str(e) for e in schema_errors(front(project, name), schema, file=name)] == []


def test_tech_md_parameter_counts_match_the_instantiated_models(project):
    tech = front(project, "docs/plan/tech.md")
    # as tech.md measures them: a pretrained encoder with random weights (no weights/ here)
    models = {key: ["model.pretrained=false"] if m["kind"] == "pretrained" else []
              for key, m in CATALOG["text_classification"]["models"].items()}
    script = COUNT_PARAMS.format(pkg="demo_project", models=models)
    counted = json.loads(subprocess.run([sys.executable, "-c", script], cwd=project, capture_output=True, text=True,
                                        check=True).stdout)
    assert {c["key"]: c["params"] for c in tech["candidates"]} == counted
    assert all(c["params_source"].startswith("measured: ") for c in tech["candidates"])
    assert all(c["flops_per_sample"] > 0 and c["cpu_latency_ms"] > 0 for c in tech["candidates"])


def test_tech_md_estimates_follow_the_documented_formulas(project):
    tech = front(project, "docs/plan/tech.md")
    a, hw = tech["assumptions"], tech["hardware"]
    assert hw["name"] == "CPU" and a["full_samples"] == CATALOG["text_classification"]["full"]["samples"]
    for c in tech["candidates"]:
        params = c["params_with_weights"] or c["params"]  # a pretrained encoder: with its weights' vocabulary
        assert (c["params_with_weights"] is None) == (c["kind"] != "pretrained")
        memory = (16 * params + 4 * c["activations_per_sample"] * a["batch_size"]) / 1e9
        hours = 3 * c["flops_per_sample"] * a["full_samples"] * a["epochs"] / (hw["fp32_tflops"] * 1e12 * 0.3) / 3600
        assert c["train_memory_gb"] == round(memory, 3) and c["train_hours"] == round(hours, 4)


def test_task_md_lists_checkable_tasks(project):
    tasks = front(project, "docs/plan/task.md")["tasks"]
    assert [t["id"] for t in tasks] == [f"T{i}" for i in range(1, 9)]
    for t in tasks:
        for check in t["checks"]:
            if check["kind"] == "file_exists":
                assert (project / check["target"]).exists(), check


def test_existing_documents_are_kept_unless_forced(project, capsys):
    path = project / "docs/plan/requirements.md"
    edited = path.read_text(encoding="utf-8") + "\nMy own notes.\n"
    path.write_text(edited, encoding="utf-8")
    assert plan_docs.main(["--project", str(project), "--no-input"]) == 0
    assert capsys.readouterr().out == "planner: docs/plan/requirements.md, docs/plan/tech.md, docs/plan/task.md exist; kept them (--force rewrites)\n"
    assert path.read_text(encoding="utf-8") == edited
    (project / "docs/plan/task.md").unlink()
    assert plan_docs.main(["--project", str(project), "--no-input"]) == 0
    out = capsys.readouterr().out
    assert "planner: kept the existing docs/plan/requirements.md (project-owned; --force rewrites it)" in out
    assert path.read_text(encoding="utf-8") == edited and (project / "docs/plan/task.md").exists()
    assert plan_docs.main(["--project", str(project), "--no-input", "--force"]) == 0
    assert "My own notes." not in path.read_text(encoding="utf-8")


def test_planner_inference_becomes_the_copier_defaults(tmp_path):
    root = render(tmp_path / "demo_project", requirement="用户评论情感分析，10万条评论，RTX 4090 训练，F1达到0.9")
    answers = yaml.safe_load((root / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert (answers["task_family"], answers["model"], answers["accelerator"]) == ("text_classification", "bert_chinese", "gpu")
    req = front(root, "docs/plan/requirements.md")
    assert req["language"] == "zh" and req["sla"]["f1_pct"] == 90.0 and req["constraints"]["gpu"] == "RTX 4090"
    assert front(root, "docs/plan/tech.md")["hardware"]["name"] == "RTX 4090"


def test_hooks_run_on_copy_only_and_migrations_after_the_merge():
    config = yaml.safe_load((TEMPLATE / "copier.yml").read_text(encoding="utf-8").split("\n---\n")[0])
    tasks, migrations = config["_tasks"], config["_migrations"]
    assert [t["when"] for t in tasks] == ["{{ _copier_operation == 'copy' }}"] * 2
    assert [m["when"] for m in migrations] == ["{{ _stage == 'after' }}"] * 2
    assert all("requirement" not in t["command"] for t in tasks + migrations)  # never interpolated into a shell


def test_missing_litellm_is_one_clear_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "litellm", None)
    with pytest.raises(DependencyError) as err:
        plan_with_llm("x", CATALOG, "image_classification", "openai/x")
    assert str(err.value) == "the LLM planner (openai/x) needs the Python package 'litellm': pip install litellm"


def test_copy_leaves_the_figures_pending_and_setup_measures_them(tmp_path):
    root = render(tmp_path / "demo_project", setup=False, task_family="tabular_regression")
    tech = front(root, "docs/plan/tech.md")
    assert {c["params_source"] for c in tech["candidates"]} == {"pending: measured by `nox -s setup` in the project venv"}
    assert [c["params"] for c in tech["candidates"]] == [None, None, None]
    assert (tech["assumptions"]["batch_size"], tech["assumptions"]["epochs"]) == (None, None)
    body = (root / "docs/plan/tech.md").read_text(encoding="utf-8")
    assert ("| parameters (measured) | pending: measured by `nox -s setup` | pending: measured by `nox -s setup` "
            "| pending: measured by `nox -s setup` |") in body
    assert not (root / "reports/PROJECT_BUILD_LOG.md").exists()
    out = finish_setup(root)
    assert out.splitlines()[0] == "setup: measured mlp, tabular_resnet, ft_transformer in this venv into docs/plan/tech.md"
    tech = front(root, "docs/plan/tech.md")
    assert all(c["params_source"].startswith("measured: ") and c["params"] > 0 for c in tech["candidates"])
    assert tech["assumptions"]["batch_size"] >= 1 and "pending" not in (root / "docs/plan/tech.md").read_text()
    assert finish_setup(root).splitlines()[0] == "setup: docs/plan/tech.md is measured already"


def test_measure_outside_the_project_venv_is_one_error_line(monkeypatch, project):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(HephaestusError) as err:
        plan_docs.measure(project, "demo_project", ["fasttext"])
    assert str(err.value) == ("--measure needs 'torch' in this Python: run the hook from the project venv (`nox -s plan`), "
                              "or leave --measure out and let `nox -s setup` measure")
