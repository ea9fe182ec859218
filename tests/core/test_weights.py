"""validators/weights.py: the manifests' round trip, and every error `verify` names (exact lines)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from validators import weights
from validators.errors import GateError
from validators.project import Project

from ..helpers import write_file

COMMIT = "ab" * 20
CONFIG, WEIGHTS = b'{"model_type": "resnet"}\n', b"\x00\x01weights" * 100
HINT = ("(hint: nox -s fetch_weights -- resnet18 (where there is internet), then copy weights/resnet18/ and "
        "weights/manifest.yaml here)")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetched(files: dict[str, bytes], **extra) -> weights.Fetch:
    return weights.Fetch("microsoft/resnet-18", "main", COMMIT, "https://huggingface.co", "2026-11-26T10:00:00Z",
                         {name: weights.FileRecord(sha(data), len(data)) for name, data in files.items()}, **extra)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A project whose configured model, resnet18, is pretrained and was fetched (config.json, model.safetensors)."""
    monkeypatch.delenv("HEPHAESTUS_WEIGHTS", raising=False)
    write_file(tmp_path / "configs/train.yaml", "defaults:\n  model: resnet18  # c\n")
    write_file(tmp_path / "configs/model/resnet18.yaml", "name: resnet18\npretrained: true\n")
    write_file(tmp_path / "configs/model/small_cnn.yaml", "name: small_cnn\n")
    write_file(tmp_path / "weights/resnet18/config.json", CONFIG)
    write_file(tmp_path / "weights/resnet18/model.safetensors", WEIGHTS)
    weights.write_weights(tmp_path / "weights", {"resnet18": fetched({"config.json": CONFIG, "model.safetensors": WEIGHTS})})
    return Project(tmp_path)


def lines(project: Project, model: str = "resnet18") -> list[str]:
    return [str(e) for e in weights.verify(project, model)]


def test_weights_manifest_round_trip(tmp_path):
    models = {"resnet18": fetched({"config.json": CONFIG, "model.safetensors": WEIGHTS}),
              "bert_chinese": fetched({"vocab.txt": "中文\n".encode()})}
    path = weights.write_weights(tmp_path, models)
    assert weights.read_weights(tmp_path) == models
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Written by `nox -s fetch_weights`")
    data = yaml.safe_load(text)
    assert list(data) == ["schema_version", "models"] and list(data["models"]) == ["bert_chinese", "resnet18"]
    assert data["models"]["resnet18"] == {
        "repo": "microsoft/resnet-18", "revision": "main", "commit": COMMIT, "endpoint": "https://huggingface.co",
        "fetched": "2026-11-26T10:00:00Z", "files": {"config.json": {"sha256": sha(CONFIG), "bytes": len(CONFIG)},
                                                     "model.safetensors": {"sha256": sha(WEIGHTS), "bytes": len(WEIGHTS)}}}
    assert not list(tmp_path.glob("*.tmp"))


def test_data_manifest_round_trip(tmp_path):
    dataset = fetched({"mnist/train-00000-of-00001.parquet": WEIGHTS}, written={"split.csv": weights.record_of(
        write_file(tmp_path / "split.csv", "path,label,split\n"))}, val="0.1 of train")
    weights.write_data(tmp_path, dataset)
    assert weights.read_data(tmp_path) == dataset
    assert weights.read_data(tmp_path / "nowhere") is None
    assert list(yaml.safe_load((tmp_path / "manifest.yaml").read_text())["dataset"]) == [
        "repo", "revision", "commit", "endpoint", "fetched", "files", "written", "val"]


def test_no_manifest_reads_as_no_models(tmp_path):
    assert weights.read_weights(tmp_path) == {}


@pytest.mark.parametrize(("body", "expected"), [
    ("schema_version: 2\nmodels: {}\n", "weights/manifest.yaml: <root>: {'schema_version': 2, 'models': {}} is invalid: "
                                         "expected schema_version: 1 and `models:`"),
    ("schema_version: 1\nmodels:\n  resnet18: {repo: r/x}\n", "weights/manifest.yaml: models.resnet18.revision: missing: "
                                                              "expected a non-empty string"),
    ("schema_version: 1\nmodels:\n  m: {repo: a/b, revision: main, commit: abc, endpoint: e, fetched: t, files: {}}\n",
     "weights/manifest.yaml: models.m.commit: 'abc' is invalid: expected a commit hash of 40 hex digits"),
    (f"schema_version: 1\nmodels:\n  m: {{repo: a/b, revision: main, commit: {COMMIT}, endpoint: e, fetched: t, "
     f"files: {{../x: {{sha256: {'a' * 64}, bytes: 1}}}}}}\n",
     "weights/manifest.yaml: models.m.files.../x: " + repr({"sha256": "a" * 64, "bytes": 1})[:77] + "... is invalid: "
     "expected a relative path inside the folder -> {sha256: 64 hex digits, bytes: >= 0}"),
])
def test_a_malformed_manifest_is_one_gate_error(tmp_path, body, expected):
    (tmp_path / "manifest.yaml").write_text(body)
    with pytest.raises(GateError) as err:
        weights.read_weights(tmp_path)
    assert str(err.value) == expected


def test_fetched_weights_verify_clean(project):
    assert lines(project) == []
    assert list(weights.verify_configured(project)) == []


def test_every_verify_error_exactly(project):
    root = project.root / "weights"
    (root / "resnet18/model.safetensors").write_bytes(WEIGHTS[:-1] + b"!")
    (root / "resnet18/config.json").unlink()
    assert lines(project) == [
        f"weights/resnet18/config.json: <root>: missing: expected the file fetched from microsoft/resnet-18@{COMMIT[:12]} "
        f"({len(CONFIG)} bytes, sha256 {sha(CONFIG)[:12]}) {HINT}",
        f"weights/resnet18/model.safetensors: sha256: '{sha(WEIGHTS[:-1] + b'!')[:12]}' is invalid: expected sha256 "
        f"{sha(WEIGHTS)[:12]} as fetched from microsoft/resnet-18@{COMMIT[:12]} ({len(WEIGHTS)} bytes; this file has "
        f"{len(WEIGHTS)}) {HINT}"]


def test_no_entry_for_the_model(project):
    weights.write_weights(project.root / "weights", {})
    assert lines(project) == [f"weights/manifest.yaml: models.resnet18: missing: expected the record of resnet18's fetch {HINT}"]


def test_no_manifest_and_no_folder(project):
    (project.root / "weights/manifest.yaml").unlink()
    (project.root / "weights/resnet18/config.json").unlink()
    (project.root / "weights/resnet18/model.safetensors").unlink()
    (project.root / "weights/resnet18").rmdir()
    assert lines(project) == [
        "weights/manifest.yaml: <root>: missing: expected the manifest nox -s fetch_weights writes (repo, commit, "
        f"sha256 of every file) {HINT}",
        f"weights/resnet18: <root>: missing: expected the folder of resnet18's pretrained weights {HINT}"]


def test_a_malformed_manifest_is_reported_with_the_fetch_hint(project):
    (project.root / "weights/manifest.yaml").write_text("models: [\n")
    assert len(lines(project)) == 1 and lines(project)[0].startswith("weights/manifest.yaml: <root>: missing: expected valid YAML")
    assert lines(project)[0].endswith(HINT)


def test_hephaestus_weights_moves_the_root(project, tmp_path_factory, monkeypatch):
    elsewhere = tmp_path_factory.mktemp("mount")
    monkeypatch.setenv("HEPHAESTUS_WEIGHTS", str(elsewhere))
    assert weights.weights_root(project) == elsewhere
    assert [e.file for e in weights.verify(project, "resnet18")] == [str(elsewhere / "manifest.yaml"), str(elsewhere / "resnet18")]


def test_only_a_configured_pretrained_model_is_verified(project):
    (project.root / "configs/train.yaml").write_text("defaults:\n  model: small_cnn  # c\n")
    (project.root / "weights/resnet18/config.json").unlink()
    assert list(weights.verify_configured(project)) == []            # small_cnn trains from scratch
    assert len(list(weights.verify_configured(project, "resnet18"))) == 1  # a job's model=resnet18 override
    assert weights.pretrained_models(project) == ["resnet18"] and weights.configured_model(project) == "small_cnn"


def test_public_endpoint_drops_credentials_and_query():
    assert weights.public_endpoint("https://user:hf_secret@mirror.example:8443/hub/?token=x") == "https://mirror.example:8443/hub"
    assert weights.public_endpoint("http://127.0.0.1:5000/") == "http://127.0.0.1:5000"
