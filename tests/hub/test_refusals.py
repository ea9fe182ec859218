"""The cluster wing refuses a configured pretrained model whose weights are missing or altered: gate D2, the review
before compute of `submit` (the composed config's model, which a command line may change), and `cluster-venv`."""

from __future__ import annotations

import pytest

from validators import weights
from validators.cluster import GATES
from validators.cluster.submit import review
from validators.cluster.venv_build import build
from validators.cluster.weights_gate import rule_pretrained_weights
from validators.errors import ClusterError
from validators.project import Project

from ..helpers import write_file
from .conftest import make_project

COMMIT = "cd" * 20
HINT = "(hint: nox -s fetch_weights -- {m} (where there is internet), then copy weights/{m}/ and weights/manifest.yaml here)"
COMPOSED = "seed: 42\nmodel:\n  name: {m}\n  pretrained: {p}\n  freeze_backbone: false\n"


def fetched(root, model: str = "resnet18", data: bytes = b"weights") -> None:
    write_file(root / f"weights/{model}/model.safetensors", data)
    write_file(root / f"weights/{model}/config.json", b"{}")
    weights.write_weights(root / "weights", {**weights.read_weights(root / "weights"), model: weights.Fetch(
        "microsoft/resnet-18", "main", COMMIT, "https://huggingface.co", "2026-11-26T10:00:00Z",
        {"config.json": weights.record_of(root / f"weights/{model}/config.json"),
         "model.safetensors": weights.record_of(root / f"weights/{model}/model.safetensors")})})


@pytest.fixture(autouse=True)
def no_weights_mount(monkeypatch):
    monkeypatch.delenv("HEPHAESTUS_WEIGHTS", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)


def test_gate_d2_has_the_weights_rule_and_passes_a_toy_model(tmp_path):
    assert rule_pretrained_weights in GATES["D2"]
    assert list(rule_pretrained_weights(Project(make_project(tmp_path / "p", model="small_cnn")))) == []


def test_gate_d2_names_each_missing_or_altered_file(tmp_path):
    root = make_project(tmp_path / "p")
    assert [str(e) for e in rule_pretrained_weights(Project(root))] == [
        f"weights/manifest.yaml: <root>: missing: expected the manifest nox -s fetch_weights writes (repo, commit, sha256 of "
        f"every file) {HINT.format(m='resnet18')}",
        f"weights/resnet18: <root>: missing: expected the folder of resnet18's pretrained weights {HINT.format(m='resnet18')}"]
    fetched(root)
    assert list(rule_pretrained_weights(Project(root))) == []
    (root / "weights/resnet18/model.safetensors").write_bytes(b"weightz")
    assert [e.file for e in rule_pretrained_weights(Project(root))] == ["weights/resnet18/model.safetensors"]


def test_submit_reviews_the_composed_models_weights_once(tmp_path, monkeypatch):
    root = make_project(tmp_path / "p", model="small_cnn")
    fetched(root, "resnet18")
    (root / "weights/resnet18/config.json").write_bytes(b'{"altered": 1}')
    monkeypatch.setattr("validators.cluster.submit.composed_config", lambda _root, args: (COMPOSED.format(m="resnet18", p="true"), ""))
    table = {"D2": GATES["D2"][1:]}  # the weights rule; the .venv rule is tests/cluster's
    _, problems = review(Project(root), ["model=resnet18"], allow_dirty=True, gate_table=lambda: table, config_errors=[])
    assert [getattr(p, "file", p) for p in problems] == ["weights/resnet18/config.json"]  # train.yaml's small_cnn needs none
    (root / "configs/train.yaml").write_text("defaults:\n  model: resnet18  # m\n")  # D2 now checks the same model
    _, problems = review(Project(root), [], allow_dirty=True, gate_table=lambda: table, config_errors=[])
    assert [str(p) for p in problems] == [str(next(weights.verify(Project(root), "resnet18")))]  # reported once
    monkeypatch.setattr("validators.cluster.submit.composed_config", lambda _root, args: (COMPOSED.format(m="resnet18", p="false"), ""))
    (root / "configs/train.yaml").write_text("defaults:\n  model: small_cnn  # m\n")
    _, problems = review(Project(root), ["model.pretrained=false"], allow_dirty=True, gate_table=lambda: table, config_errors=[])
    assert problems == []  # the same architecture from random weights needs none


def test_cluster_venv_builds_nothing_without_the_weights(tmp_path):
    root = make_project(tmp_path / "p")
    with pytest.raises(ClusterError) as err:
        build(Project(root), "debug-cpu", None)
    assert str(err.value) == (
        "nothing was built: the configured pretrained model's weights are not as fetched (gate D2):\n"
        f"  weights/manifest.yaml: <root>: missing: expected the manifest nox -s fetch_weights writes (repo, commit, sha256 "
        f"of every file) {HINT.format(m='resnet18')}\n"
        f"  weights/resnet18: <root>: missing: expected the folder of resnet18's pretrained weights {HINT.format(m='resnet18')} "
        "(hint: fetch them where there is internet and copy weights/ here)")
    assert not (root / ".venv").exists()
