"""End to end: the text family's pretrained encoders (distilbert, bert_chinese, mdistilbert) in a generated project.

One text project is generated and its venv built once. Each encoder then goes through the project's own
`nox -s train_smoke` from random weights (`model.pretrained=false`: the published architecture over the
mini data's vocabulary) with no weights/ folder, and `scripts/infer.py` and the real HTTP service
(`scripts/serve.py`) answer on its checkpoint, the same predictions both ways.

The pretrained path reads tiny stand-ins (tests/helpers/text_encoders.py, the layout `nox -s fetch_weights`
leaves) from weights/bert_chinese/: trained with `model.freeze_backbone=true`, the checkpoint's encoder
equals the saved weights tensor for tensor while its head moved; the checkpoint carries the tokenizer,
which encodes exactly as transformers' AutoTokenizer does, and it predicts the same after weights/ is deleted.

To keep CPU time short the smoke runs use data.max_length=16, data.batch_size=8 and two batches
per split (trainer.limit_*); `pytest -s` prints each encoder's parameters and train_smoke time.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from validators import pins

from ..helpers import render

pytestmark = pytest.mark.e2e
ENCODERS = ["distilbert", "bert_chinese", "mdistilbert"]
QUICK = ["data.max_length=16", "data.batch_size=8", "trainer.limit_train_batches=2", "trainer.limit_val_batches=2",
         "trainer.limit_test_batches=2", "logger=csv"]  # counts of batches: 1 would be the float 1.0, all of them
TEXTS = ["the battery is excellent", "这个屏幕很差", "Arrived broken, very disappointed"]
STANDINS = Path(__file__).resolve().parents[1] / "helpers" / "text_encoders.py"


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, ok: bool = True) -> subprocess.CompletedProcess:
    """`cmd` in `cwd` outside any venv and, unless `env` names it, without $HEPHAESTUS_WEIGHTS."""
    full = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "HEPHAESTUS_WEIGHTS")}
    result = subprocess.run(cmd, cwd=cwd, env={**full, "PYTHONUNBUFFERED": "1", **(env or {})}, capture_output=True,
                            text=True, timeout=1800)
    if ok:
        assert result.returncode == 0, f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A text project with its debug-cpu venv, set up (tech.md measured) against the stand-in weights; and those weights."""
    root = render(tmp_path_factory.mktemp("text") / "demo_project", setup=False, task_family="text_classification")
    venv = root / ".venvs/debug-cpu"  # what `nox -s setup` builds first (the project noxfile's build_venv) ...
    run([sys.executable, "-m", "uv", "venv", "--allow-existing", "--python", "3.11", str(venv)], root)
    run([sys.executable, "-m", "uv", "pip", "install", "--python", str(venv / "bin/python"), "-r", "requirements-cpu.txt",
         *pins.uv_sources("debug-cpu", pins.find_links())], root)
    weights = tmp_path_factory.mktemp("weights")
    run([python(root), str(STANDINS), str(weights), "data/mini/train.csv"], root)
    # ... then it measures every candidate of tech.md; the pretrained ones load from $HEPHAESTUS_WEIGHTS
    run([sys.executable, "-m", "nox", "-s", "setup"], root, env={"HEPHAESTUS_WEIGHTS": str(weights)})
    assert not (root / "weights").exists()
    return root, weights


def python(root: Path) -> str:
    return str(root / ".venvs/debug-cpu/bin/python")


def in_venv(root: Path, code: str) -> object:
    """Run `code` in the project venv with src/ importable; what it prints last, as JSON."""
    out = run([python(root), "-c", "import sys; sys.path.insert(0, 'src')\n" + code], root).stdout
    return json.loads(out.strip().splitlines()[-1])


def infer(root: Path, checkpoint: Path) -> list[dict]:
    out = run([python(root), "scripts/infer.py", "--checkpoint", str(checkpoint), *TEXTS], root).stdout
    return json.loads(out)["predictions"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def serve(root: Path, checkpoint: Path) -> tuple[list[dict], dict]:
    """scripts/serve.py on `checkpoint` over real HTTP: /predict/batch on TEXTS and /predict on the first one."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HEPHAESTUS_WEIGHTS", None)
    server = subprocess.Popen([python(root), "scripts/serve.py", "--checkpoint", str(checkpoint), "--port", str(port)],
                              cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, f"the service exited:\n{server.stdout.read()}"
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=5) as response:
                    if json.loads(response.read())["model_loaded"]:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the service did not load the checkpoint in 180 s"
            time.sleep(1)
        return post(f"{base}/predict/batch", {"texts": TEXTS})["predictions"], post(f"{base}/predict", {"text": TEXTS[0]})
    finally:
        server.terminate()
        server.wait(timeout=30)


def assert_same(served: list[dict], inferred: list[dict]) -> None:
    """Same ids and labels; probabilities equal to their 6 printed decimals (one forward pass each way)."""
    assert [p["id"] for p in served] == [p["id"] for p in inferred] == TEXTS
    assert [p["label"] for p in served] == [p["label"] for p in inferred]
    for a, b in zip(served, inferred, strict=True):
        assert a["probs"].keys() == b["probs"].keys() == {"negative", "positive"}
        assert all(abs(a["probs"][c] - b["probs"][c]) <= 1e-6 for c in a["probs"]), (a, b)
        assert abs(sum(a["probs"].values()) - 1) < 1e-5


@pytest.mark.parametrize("model", [m if m == "distilbert" else pytest.param(m, marks=pytest.mark.models) for m in ENCODERS])
def test_train_smoke_from_random_weights_then_infer_and_serve_without_weights(project, model):
    import torch

    root, _ = project
    start = time.perf_counter()
    run([sys.executable, "-m", "nox", "-s", "train_smoke", "--", f"model={model}", "model.pretrained=false", *QUICK], root)
    seconds = time.perf_counter() - start
    summary = json.loads((root / "runs/latest/summary.json").read_text())
    assert summary["model"] == model and summary["epochs"] == 1 and summary["global_step"] == 2
    checkpoint = root / "runs/latest/checkpoints/last.ckpt"
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    kwargs = ckpt["hyper_parameters"]["model_kwargs"]
    arch = kwargs["arch"]
    expected_type = "bert" if model == "bert_chinese" else "distilbert"
    assert arch["model_type"] == expected_type and arch["vocab_size"] == kwargs["vocab_size"] == len(ckpt["preprocess"]["vocab"])
    assert (arch["num_hidden_layers"] if expected_type == "bert" else arch["n_layers"]) == (12 if expected_type == "bert" else 6)
    assert kwargs["max_length"] == 16 and kwargs["pad_id"] == 0 and "tokenizer" not in ckpt["preprocess"]
    params = sum(t.numel() for k, t in ckpt["state_dict"].items() if k.startswith("model."))
    print(f"\n{model}: {params:,} parameters (random init over a {kwargs['vocab_size']}-token vocabulary), "
          f"train_smoke {seconds:.1f} s")
    inferred = infer(root, checkpoint)
    batch, single = serve(root, checkpoint)
    assert_same(batch, inferred)
    assert single["id"] == TEXTS[0] and single["label"] == inferred[0]["label"]
    shutil.rmtree((root / "runs/latest").resolve())  # a BERT-base checkpoint is about 1 GB


def test_pretrained_frozen_encoder_keeps_the_fetched_weights_and_needs_no_weights_to_predict(project):
    root, weights = project
    shutil.copytree(weights / "bert_chinese", root / "weights/bert_chinese")
    run([python(root), "scripts/train.py", "--epochs", "1", "model=bert_chinese", "model.freeze_backbone=true",
         "data.batch_size=64", "logger=csv"], root)
    checkpoint = root / "runs/latest/checkpoints/last.ckpt"
    compared = in_venv(root, f"""
import json, torch
from safetensors.torch import load_file
from transformers import AutoTokenizer
from demo_project.predict import load_checkpoint
saved = load_file('weights/bert_chinese/model.safetensors')
state = torch.load('{checkpoint}', map_location='cpu', weights_only=False)['state_dict']
module, pre = load_checkpoint('{checkpoint}')
reference = AutoTokenizer.from_pretrained('weights/bert_chinese')({TEXTS!r}, padding='max_length', truncation=True, max_length=64)
print(json.dumps({{
    'encoder': [k for k in saved if k.startswith('bert.') and not torch.equal(saved[k], state['model.model.' + k])],
    'encoder_tensors': sum(k.startswith('bert.') for k in saved),
    'head_moved': not torch.equal(saved['classifier.weight'], state['model.model.classifier.weight']),
    'preprocessor': type(pre).__name__,
    'same_ids': pre.encode({TEXTS!r}).tolist() == reference['input_ids'],
}}))
""")
    assert compared == {"encoder": [], "encoder_tensors": 39, "head_moved": True, "preprocessor": "EncoderPreprocessor",
                        "same_ids": True}
    before = infer(root, checkpoint)
    shutil.rmtree(root / "weights")
    assert infer(root, checkpoint) == before
    batch, _ = serve(root, checkpoint)
    assert_same(batch, before)
    run([sys.executable, "-m", "nox", "-s", "tests", "--", "tests/test_serve.py", "-q"], root)  # the project's service tests on it


def test_missing_weights_is_one_error_line_with_the_fetch_command(project):
    root, _ = project
    assert not (root / "weights").exists()
    result = run([python(root), "scripts/train.py", "--fast-dev-run", "model=distilbert"], root, ok=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["Seed set to 42", (  # Lightning's line, then ours: no traceback
        f"error: configs/model/distilbert.yaml: pretrained: True needs the weights in {root.resolve()}/weights/distilbert/ "
        "(config.json is missing) (hint: run `nox -s fetch_weights -- distilbert` where there is internet and copy "
        "weights/ here, or set model.pretrained=false to train the same architecture from random weights)")]


def test_texts_longer_than_the_position_embeddings_are_a_config_error(project):
    root, _ = project
    result = run([python(root), "scripts/train.py", "--fast-dev-run", "model=distilbert", "model.pretrained=false",
                  "data.max_length=600"], root, ok=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: configs/ or <command line>: data.max_length: 600 is more than distilbert's 512 position embeddings "
        "(hint: set data.max_length=512 or less)")
    assert "Traceback" not in result.stderr


@pytest.mark.models
def test_the_projects_own_tests_build_every_model(project):
    root, _ = project
    run([sys.executable, "-m", "nox", "-s", "tests", "--", "tests/test_project.py", "-q", "-k", "forward or range"], root)
