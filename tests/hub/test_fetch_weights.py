"""`fetch-weights` and `weights-check` against the hub stand-in, with the real huggingface_hub 2.4.0 client: what is
fetched, the manifest's hashes, the progress lines, the token, and every failure as one `error:` line with a hint."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys

import yaml

from validators.hub.client import RemoteFile
from validators.hub.models import select

from ..helpers import TEMPLATE
from .conftest import hub_env, make_project, validators

REPO = "microsoft/resnet-18"
FETCHED = ["config.json", "model.safetensors", "preprocessor_config.json"]
LINE = re.compile(r"  (\S+) +([\d,]+) bytes +(\d+\.\d\d) s")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(project, hub, home, *args, **env):
    return validators(project, hub_env(hub, home, **env), "fetch-weights", *args)


def test_fetch_weights_downloads_what_from_pretrained_needs_and_records_every_hash(hub, image_project, tmp_path):
    served = hub.repo(REPO)
    done = fetch(image_project, hub, tmp_path / "hf")
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0] == "note: HF_HUB_OFFLINE=1 in this environment does not apply to the fetch, the one step that goes online"
    assert out[1] == f"hub: {hub.url} (HF_TOKEN set); weights: weights/"
    assert out[2] == (f"resnet18: {REPO}@main -> commit {served.commit[:12]}: 3 of 8 files (left out: .gitattributes, README.md, "
                      "onnx/, pytorch_model.bin, tf_model.h5)")
    progress = [LINE.fullmatch(line) for line in out[3:6]]
    assert [(m[1], int(m[2].replace(",", ""))) for m in progress] == [(f, len(served.files[f])) for f in FETCHED]
    assert all(float(m[3]) < 10 for m in progress)
    total = sum(len(served.files[f]) for f in FETCHED)
    assert re.fullmatch(rf"resnet18: 3 files, {total:,} bytes in \d+\.\d\d s -> weights/resnet18/ \(sha256 of each in "
                        r"weights/manifest.yaml\)", out[6])
    folder = image_project / "weights/resnet18"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == FETCHED  # no .cache/, no README, no .bin
    assert all((folder / f).read_bytes() == served.files[f] for f in FETCHED)
    assert sorted(p.name for p in (image_project / "weights").iterdir()) == ["manifest.yaml", "resnet18"]
    entry = yaml.safe_load((image_project / "weights/manifest.yaml").read_text())["models"]["resnet18"]
    assert {k: entry[k] for k in ("repo", "revision", "commit", "endpoint")} == {
        "repo": REPO, "revision": "main", "commit": served.commit, "endpoint": hub.url}
    assert entry["files"] == {f: {"sha256": sha(served.files[f]), "bytes": len(served.files[f])} for f in FETCHED}
    asked = [(r.server, r.method, r.path.rsplit("/", 1)[-1] if "/resolve/" in r.path else r.path) for r in hub.requests
             if r.path != "/api/agent-harnesses"]
    assert asked[:2] == [("hub", "GET", f"/api/models/{REPO}/revision/main"),
                         ("hub", "GET", f"/api/models/{REPO}/tree/{served.commit}")]
    assert [a for a in asked[2:] if a[0] == "hub"] == [("hub", m, f) for f in FETCHED for m in ("HEAD", "GET")
                                                       if not (m == "GET" and f == "model.safetensors")]
    assert [(a[0], a[1]) for a in asked[2:] if a[0] == "cdn"] == [("cdn", "GET")]  # the LFS file, from its signed URL


def test_the_token_goes_to_the_hub_as_bearer_and_into_no_file(hub, image_project, tmp_path):
    assert fetch(image_project, hub, tmp_path / "hf", token="hf_good").returncode == 0
    assert {r.authorization for r in hub.requests if r.server == "hub" and r.path != "/api/agent-harnesses"} == {"Bearer hf_good"}
    assert {r.authorization for r in hub.requests if r.server == "cdn"} == {None}  # never off the hub's origin
    for folder in (image_project, tmp_path / "hf"):
        leaked = [p for p in folder.rglob("*") if p.is_file() and b"hf_good" in p.read_bytes()]
        assert leaked == []


def test_a_second_fetch_keeps_what_still_matches_and_a_corrupted_file_is_fetched_again(hub, image_project, tmp_path):
    assert fetch(image_project, hub, tmp_path / "hf").returncode == 0
    manifest = (image_project / "weights/manifest.yaml").read_bytes()
    hub.requests.clear()
    again = fetch(image_project, hub, tmp_path / "hf")
    assert again.returncode == 0 and (image_project / "weights/manifest.yaml").read_bytes() == manifest
    assert again.stdout.splitlines()[-1] == (f"resnet18: up to date ({REPO}@main is still commit {hub.repo(REPO).commit[:12]}; "
                                             f"3 files, {sum(len(hub.repo(REPO).files[f]) for f in FETCHED):,} bytes, every "
                                             "sha256 as fetched; --force fetches again)")
    assert [r.path for r in hub.requests if r.path != "/api/agent-harnesses"] == [f"/api/models/{REPO}/revision/main"]
    weights_file = image_project / "weights/resnet18/model.safetensors"
    weights_file.write_bytes(weights_file.read_bytes()[:-4] + b"XXXX")
    third = fetch(image_project, hub, tmp_path / "hf")
    assert third.returncode == 0 and "up to date" not in third.stdout
    assert weights_file.read_bytes() == hub.repo(REPO).files["model.safetensors"]


def test_weights_check_names_the_corrupted_file_and_the_command(hub, image_project, tmp_path):
    assert fetch(image_project, hub, tmp_path / "hf").returncode == 0
    ok = validators(image_project, hub_env(None, tmp_path / "hf"), "weights-check")
    assert (ok.returncode, ok.stdout.strip()) == (0, f"resnet18: 3 files, {sum(len(hub.repo(REPO).files[f]) for f in FETCHED):,} "
                                                     f"bytes, every sha256 as fetched from {REPO}@{hub.repo(REPO).commit[:12]} "
                                                     "(weights/resnet18/)")
    target = image_project / "weights/resnet18/model.safetensors"
    corrupted = target.read_bytes()[:-1] + b"\x00"
    target.write_bytes(corrupted)
    bad = validators(image_project, hub_env(None, tmp_path / "hf"), "weights-check")
    served = hub.repo(REPO).files["model.safetensors"]
    assert bad.returncode == 1
    assert bad.stdout.splitlines() == [
        f"weights/resnet18/model.safetensors: sha256: '{sha(corrupted)[:12]}' is invalid: expected sha256 {sha(served)[:12]} "
        f"as fetched from {REPO}@{hub.repo(REPO).commit[:12]} ({len(served)} bytes; this file has {len(corrupted)}) (hint: "
        "nox -s fetch_weights -- resnet18 (where there is internet), then copy weights/resnet18/ and weights/manifest.yaml here)"]


def one_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def test_a_gated_repository_without_a_token_is_one_error_line(hub, image_project, tmp_path):
    hub.gate(REPO)
    line = one_error(fetch(image_project, hub, tmp_path / "hf", token=None))
    assert line == (f"error: resnet18: {REPO} is gated: {hub.url} refused config.json (HTTP 401 GatedRepo: Access to model "
                    f"{REPO} is restricted. You must have access to it and be authenticated to access it. Please log in.) "
                    "(hint: accept the repository's terms on its hub page, then set HF_TOKEN to a token of that account)")
    assert not (image_project / "weights/resnet18").exists() and not (image_project / "weights/manifest.yaml").exists()
    assert fetch(image_project, hub, tmp_path / "hf", token="hf_good").returncode == 0  # with the token it goes through


def test_a_refused_token_is_one_error_line(hub, image_project, tmp_path):
    line = one_error(fetch(image_project, hub, tmp_path / "hf", token="hf_expired"))
    assert line == (f"error: resnet18: {hub.url} refused HF_TOKEN for revision 'main' of {REPO} (HTTP 401: Invalid credentials "
                    "in Authorization header) (hint: set HF_TOKEN to a valid access token, or unset it for a public repository)")


def test_an_unknown_repository_or_revision_is_one_error_line(hub, image_project, tmp_path):
    config = image_project / "configs/hub.yaml"
    config.write_text(config.read_text().replace("microsoft/resnet-18, revision: main", "microsoft/resnet-81, revision: main"))
    assert one_error(fetch(image_project, hub, tmp_path / "hf")) == (
        f"error: resnet18: microsoft/resnet-81: no such repository at {hub.url} (HTTP 404 RepoNotFound: Repository not found) "
        "(hint: check the repo in configs/hub.yaml and HF_ENDPOINT; a private repository also needs HF_TOKEN)")
    config.write_text(config.read_text().replace("microsoft/resnet-81, revision: main", "microsoft/resnet-18, revision: v9"))
    assert one_error(fetch(image_project, hub, tmp_path / "hf")) == (
        f"error: resnet18: {REPO}: no such revision at {hub.url} (HTTP 404 RevisionNotFound: Invalid rev id: v9) "
        "(hint: set an existing branch, tag or commit hash in configs/hub.yaml)")


def test_a_failing_hub_and_an_unreachable_one_are_one_error_line_each(hub, image_project, tmp_path):
    hub.inject(503, path="/api/models/")
    assert one_error(fetch(image_project, hub, tmp_path / "hf")) == (
        f"error: resnet18: {hub.url} failed revision 'main' of {REPO} (HTTP 503: stand-in: injected HTTP 503) "
        "(hint: the hub or the mirror is failing: try again later)")
    line = one_error(validators(image_project, hub_env(None, tmp_path / "hf", HF_ENDPOINT="http://127.0.0.1:9"), "fetch-weights"))
    assert line.startswith(f"error: resnet18: cannot reach http://127.0.0.1:9 for revision 'main' of {REPO} (ConnectError: ")
    assert line.endswith("(hint: fetch where there is internet, or set HF_ENDPOINT to a reachable hub mirror)")
    assert not (image_project / "weights").exists()


def test_a_transient_5xx_on_a_file_is_retried(hub, image_project, tmp_path):
    hub.inject(503, path="/resolve/")  # the first HEAD fails; huggingface_hub asks once more, with retries
    done = fetch(image_project, hub, tmp_path / "hf")
    assert done.returncode == 0, done.stderr
    assert (image_project / "weights/resnet18/config.json").read_bytes() == hub.repo(REPO).files["config.json"]


def test_which_models_are_fetched(hub, tmp_path):
    project = make_project(tmp_path / "toy", model="small_cnn")
    done = fetch(project, hub, tmp_path / "hf")
    assert (done.returncode, done.stdout.strip()) == (0, "nothing to fetch: configs/train.yaml picks small_cnn, which is not "
                                                         "pretrained: name the models to fetch (--all: convnext_tiny, resnet18, "
                                                         "resnet50)")
    unknown = fetch(project, hub, tmp_path / "hf", "resnet181")
    assert (unknown.returncode, unknown.stderr.strip()) == (2, "error: resnet181: not in configs/hub.yaml (its models: resnet18, "
                                                               "resnet50, convnext_tiny)")
    hub.add("microsoft/resnet-50", hub.repo(REPO).files)
    hub.add("facebook/convnext-tiny-224", hub.repo(REPO).files)
    assert fetch(project, hub, tmp_path / "hf", "--all").returncode == 0
    manifest = yaml.safe_load((project / "weights/manifest.yaml").read_text())["models"]
    assert {m: e["repo"] for m, e in manifest.items()} == {"convnext_tiny": "facebook/convnext-tiny-224",
                                                           "resnet18": REPO, "resnet50": "microsoft/resnet-50"}


def test_a_family_without_pretrained_models_has_nothing_to_fetch(hub, tmp_path):
    project = make_project(tmp_path / "tab", family="tabular_regression", model="mlp")
    done = fetch(project, hub, tmp_path / "hf", "--all")
    assert (done.returncode, done.stdout.strip()) == (0, "nothing to fetch: no configs/model/*.yaml says pretrained: true")


def test_selection_prefers_safetensors_and_keeps_tokenizer_files_at_the_top_level():
    def listed(*paths: str) -> list[RemoteFile]:
        return [RemoteFile(p, 1, "0" * 40, None) for p in paths]

    bert = listed(".gitattributes", "README.md", "config.json", "flax_model.msgpack", "model.safetensors", "pytorch_model.bin",
                  "tf_model.h5", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "onnx/tokenizer.json", "coreml/x.mlmodel")
    assert [f.path for f in select(bert)] == ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                                              "vocab.txt"]
    sharded = listed("config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                     "model.safetensors.index.json", "pytorch_model-00001-of-00002.bin")
    assert [f.path for f in select(sharded)][1:] == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                                                     "model.safetensors.index.json"]
    old = listed("config.json", "pytorch_model.bin", "tf_model.h5", "spiece.model")
    assert [f.path for f in select(old)] == ["config.json", "pytorch_model.bin", "spiece.model"]


def test_the_validators_cli_imports_neither_huggingface_hub_nor_a_project_package():
    code = ("import sys, validators.__main__ as m; m.parser(); "
            "print(sorted(n for n in sys.modules if n.split('.')[0] in ('huggingface_hub', 'transformers', 'demo_project')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=TEMPLATE, capture_output=True, text=True)
    assert (done.returncode, done.stdout.strip()) == (0, "[]")
