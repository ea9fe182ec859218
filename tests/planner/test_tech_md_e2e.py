"""tech.md measured for real: a generated project's own `nox -s setup` instantiates every candidate, the
pretrained ones with `model.pretrained=false`, and the A2 gate re-counts their parameters only.

The counts are checked against an independent count in the project venv (this module's own script).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from validators.frontmatter import join, split

from ..helpers import CATALOG, render

pytestmark = pytest.mark.e2e
COUNT = r"""
import json, sys
sys.path.insert(0, "src")
from {pkg}.config import load_config
from {pkg}.train import build
out = {{}}
for key in {models!r}:
    cfg = load_config(["model=" + key])
    if "pretrained" in cfg.model:
        cfg = load_config(["model=" + key, "model.pretrained=false"])
    _, module = build(cfg)
    out[key] = [sum(p.numel() for p in module.model.parameters()),
                sum(p.numel() for p in module.model.parameters() if p.requires_grad)]
    if "freeze_backbone" in cfg.model:
        _, frozen = build(load_config(["model=" + key, "model.pretrained=false", "model.freeze_backbone=true"]))
        out[key][1] = sum(p.numel() for p in frozen.model.parameters() if p.requires_grad)
print(json.dumps(out))
"""
CASES = {
    "image_classification": ("Classify PCB defect photos on a T4; 12,000 labelled images; under 50 ms per image.", "resnet18"),
    "text_classification": ("判断商品评论情感，用一张A100", "bert_chinese"),
}


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1500)
    assert not check or done.returncode == 0, f"{' '.join(cmd)}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


@pytest.fixture(scope="module", params=list(CASES))
def project(request, tmp_path_factory) -> tuple[str, Path]:
    family = request.param
    requirement, _ = CASES[family]
    root = render(tmp_path_factory.mktemp(family) / "demo_project", setup=False, requirement=requirement)
    run([sys.executable, "-m", "nox", "-s", "setup"], root)
    return family, root


def venv_python(root: Path) -> str:
    """The project venv `nox -s setup` built: debug-gpu when the accelerator answer is gpu (a GPU in the requirement)."""
    accelerator = yaml.safe_load((root / ".copier-answers.yml").read_text(encoding="utf-8"))["accelerator"]
    return str(root / f".venvs/debug-{accelerator}/bin/python")


def tech(root: Path) -> dict:
    return split((root / "docs/plan/tech.md").read_text(encoding="utf-8"))[0]


def test_the_planner_chose_the_pretrained_model(project):
    family, root = project
    doc = tech(root)
    assert (doc["family"], doc["chosen"]) == (family, CASES[family][1])
    assert doc["choice_rationale"].startswith("The planner's choice, confirmed in copier: rule M1: ")


def test_tech_md_params_equal_the_instantiated_models(project):
    family, root = project
    doc = tech(root)
    models = list(CATALOG[family]["models"])
    counted = json.loads(run([venv_python(root), "-c", COUNT.format(pkg="demo_project", models=models)], root).stdout)
    assert [c["key"] for c in doc["candidates"]] == models
    assert {c["key"]: c["params"] for c in doc["candidates"]} == {k: v[0] for k, v in counted.items()}
    for c in doc["candidates"]:
        assert c["params_source"].startswith("measured: ") and c["flops_per_sample"] > 0 and c["cpu_latency_ms"] > 0
        assert c["verdict"] in ("fits", "flagged", "ruled out")
        if c["kind"] == "pretrained":
            assert "with model.pretrained=false" in c["params_source"]
            assert c["trainable_params_frozen"] == counted[c["key"]][1] < c["params"] / 50  # the head only
            assert c["train_memory_gb_frozen"] < c["train_memory_gb"] and c["train_hours_frozen"] < c["train_hours"]
        else:
            assert c["trainable_params_frozen"] is None and c["train_memory_gb_frozen"] is None
    if family == "image_classification":
        sizes = {c["key"]: c["input_shape"] for c in doc["candidates"]}
        assert sizes["resnet18"].endswith(", resized to 224x224 in the model") and "224" not in sizes["small_cnn"]
        # ResNet-50 and ConvNeXt-T cost more FLOPs than ResNet-18 at the same 224x224
        flops = {c["key"]: c["flops_per_sample"] for c in doc["candidates"]}
        assert flops["resnet18"] < flops["resnet50"] and flops["resnet18"] < flops["convnext_tiny"]
    else:  # the encoders measured over the mini vocabulary; with their weights, their tokenizers' (model cards' counts)
        with_weights = {c["key"]: c["params_with_weights"] for c in doc["candidates"]}
        head = {"distilbert": 768 * 768 + 768 + 768 * 2 + 2, "bert_chinese": 768 * 2 + 2, "mdistilbert": 768 * 768 + 768 + 768 * 2 + 2}
        assert with_weights == {"fasttext": None, "text_cnn": None, "distilbert": 66_362_880 + head["distilbert"],
                                "bert_chinese": 102_267_648 + head["bert_chinese"], "mdistilbert": 134_734_080 + head["mdistilbert"]}
        flagged = {c["key"]: c["issues"] for c in doc["candidates"] if c["key"] == "distilbert"}
        assert flagged == {"distilbert": ["language: an encoder for en; the texts read as zh"]}
    body = (root / "docs/plan/tech.md").read_text(encoding="utf-8")
    assert "## Decision" in body and "frozen backbone (estimate)" in body and "pending" not in body


def test_the_a2_gate_counts_parameters_fast_and_fails_on_a_wrong_count(project):
    family, root = project
    python = venv_python(root)
    start = time.perf_counter()
    run([python, "-m", "validators", "check", "--stages", "A2"], root)
    gate_s = time.perf_counter() - start
    path = root / "docs/plan/tech.md"
    original = path.read_text(encoding="utf-8")
    doc, body = split(original)
    index = next(i for i, c in enumerate(doc["candidates"]) if c["kind"] == "pretrained")
    doc["candidates"][index]["params"] += 1
    path.write_text(join(doc, body), encoding="utf-8")
    try:
        done = run([python, "-m", "validators", "check", "--stages", "A2"], root, check=False)
    finally:
        path.write_text(original, encoding="utf-8")
    assert done.returncode == 1
    key, wrong = doc["candidates"][index]["key"], doc["candidates"][index]["params"]
    assert re.search(rf"docs/plan/tech.md: candidates\[{index}\]\.params: {wrong} is invalid: expected {wrong - 1} "
                     rf"\(the generated {key} instantiated now\)", done.stdout + done.stderr), done.stdout + done.stderr
    print(f"\n{family}: A2 gate {gate_s:.1f} s")
